"""The replica's chat machinery on top of ``Realtime``: chat events out to MQTT and back in to
this replica's sockets, typing pings from browsers, and the per-user message limit.

Delivery happens only from the MQTT path (``_deliver``), never straight from a request: the
publishing replica receives its own event back like every other replica, so delivering before
publishing as well would show a message twice. A chat event goes to the conversation's client
and to every administrator connected here.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contract.codec import chat_event_topic, decode_chat_event, encode_chat_event
from contract.enums import Role
from contract.payloads import ChatEvent, TypingEvent
from contract.topics import CHAT_PREFIX
from portal.chat.events import for_browser
from portal.chat.queries import client_of
from portal.chat.ratelimit import SlidingWindowLimit
from portal.errors import ServiceUnavailable
from portal.realtime import Connection, Realtime

log = logging.getLogger("portal.chat")

MESSAGES_PER_WINDOW, WINDOW_S = 20, 10.0
TYPING_EVERY_S = 2.0  # at most one "typing" event per person and conversation this often
_MAX_ENTRIES = 50_000


class ChatRelay:
    def __init__(self, realtime: Realtime, engine: AsyncEngine) -> None:
        self.realtime = realtime
        self._engine = engine
        self.message_limit = SlidingWindowLimit(MESSAGES_PER_WINDOW, WINDOW_S, what="chat messages")
        # conversation → its client: fixed for the conversation's life, so safe to keep.
        self._clients: dict[uuid.UUID, uuid.UUID] = {}
        self._typing_sent: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
        realtime.on_topic(CHAT_PREFIX, self._deliver)
        realtime.on_client_message("chat.", self._on_browser_message)

    async def publish(self, event: ChatEvent) -> None:
        """To every replica (this one included), which deliver it to their sockets."""
        await self.realtime.publish(chat_event_topic(event), encode_chat_event(event), qos=1)

    async def _deliver(self, topic: str, payload: bytes) -> None:
        try:
            event = decode_chat_event(topic, payload)
        except ValueError as exc:
            log.warning("ignoring a chat event on %s: %s", topic[:120], str(exc)[:200])
            return
        await self.realtime.send_to_user_and_admins(event.client_id, for_browser(event))

    async def _on_browser_message(self, connection: Connection, message: dict[str, Any]) -> None:
        """``{"type": "chat.typing", "conversation_id": …, "typing": true|false}``."""
        if message.get("type") != "chat.typing":
            await connection.send(
                {"type": "error", "detail": "chat messages are sent with POST, not the socket"}
            )
            return
        try:
            conversation_id = uuid.UUID(str(message.get("conversation_id")))
        except ValueError:
            await connection.send({"type": "error", "detail": "chat.typing needs conversation_id"})
            return
        typing = message.get("typing", True) is not False
        key = (connection.user_id, conversation_id)
        now = time.monotonic()
        if typing and now - self._typing_sent.get(key, -TYPING_EVERY_S) < TYPING_EVERY_S:
            return  # the other side's indicator is already on; a refresh can wait
        role: Role = "admin" if connection.is_admin else "client"
        client_id = await self._client_of(conversation_id, connection.user_id, role)
        if client_id is None:
            await connection.send(
                {"type": "error", "detail": f"conversation {conversation_id} not found"}
            )
            return
        if len(self._typing_sent) >= _MAX_ENTRIES:
            self._typing_sent.clear()
        if typing:
            self._typing_sent[key] = now
        else:
            self._typing_sent.pop(key, None)
        event = TypingEvent(
            conversation_id=conversation_id,
            client_id=client_id,
            sender_id=connection.user_id,
            sender_role=role,
            typing=typing,
        )
        # A typing indicator is not worth an error: the next ping tries again.
        with contextlib.suppress(ServiceUnavailable):
            await self.publish(event)

    async def _client_of(
        self, conversation_id: uuid.UUID, user_id: uuid.UUID, role: Role
    ) -> uuid.UUID | None:
        client_id = self._clients.get(conversation_id)
        if client_id is None:
            async with AsyncSession(self._engine) as session:
                client_id = await client_of(session, conversation_id, user_id, "admin")
            if client_id is None:
                return None
            if len(self._clients) >= _MAX_ENTRIES:
                self._clients.clear()
            self._clients[conversation_id] = client_id
        return client_id if role == "admin" or client_id == user_id else None
