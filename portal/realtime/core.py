"""``Realtime``: the registry of open sockets and the two dispatch tables.

MQTT events go to the handlers registered with ``on_topic`` (by topic prefix); messages
browsers send go to the handlers registered with ``on_client_message`` (by type prefix, the
longest matching prefix wins). Handlers deliver to sockets with ``send_to_user``,
``send_to_admins`` or ``send_to_user_and_admins``; those only enqueue (see ``Connection``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from contract.topics import ALERTS_SUB, CHAT_SUB, DEVICE_EVENTS_TOPIC, LIVE_SUB, STATUS_SUB
from portal.realtime.connection import Connection
from portal.realtime.devices import DeviceDirectory
from portal.realtime.link import EventLink
from portal.settings import PortalSettings

log = logging.getLogger("portal.realtime")

TopicHandler = Callable[[str, bytes], Awaitable[None]]
ClientHandler = Callable[[Connection, dict[str, Any]], Awaitable[None]]
SUBSCRIPTIONS = (ALERTS_SUB, LIVE_SUB, CHAT_SUB, STATUS_SUB, DEVICE_EVENTS_TOPIC)


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, default=str, separators=(",", ":"))


class Realtime:
    def __init__(self, settings: PortalSettings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.devices = DeviceDirectory(engine)
        self.link = EventLink(settings, SUBSCRIPTIONS, self._on_event)
        self._topic_handlers: list[tuple[str, TopicHandler]] = []
        self._client_handlers: dict[str, ClientHandler] = {}
        self._users: dict[uuid.UUID, set[Connection]] = {}
        self._admins: set[Connection] = set()
        self.on_topic(DEVICE_EVENTS_TOPIC, self.devices.on_device_event)
        self.on_client_message("ping", self._pong)

    # -- registration -----------------------------------------------------------------------

    def on_topic(self, prefix: str, handler: TopicHandler) -> None:
        """Call ``handler(topic, payload)`` for every event whose topic starts with ``prefix``."""
        self._topic_handlers.append((prefix, handler))

    def on_client_message(self, type_prefix: str, handler: ClientHandler) -> None:
        """Call ``handler(connection, message)`` for browser messages whose ``type`` starts
        with ``type_prefix`` (e.g. ``"chat."``)."""
        self._client_handlers[type_prefix] = handler

    # -- delivery ---------------------------------------------------------------------------

    @property
    def subscribed(self) -> bool:
        """Whether this replica currently receives events (shown on /health)."""
        return self.link.subscribed.is_set()

    def has_clients(self) -> bool:
        """Whether any non-administrator socket is open (else owner look-ups can be skipped)."""
        return bool(self._users)

    def sockets_of(self, user_id: uuid.UUID) -> set[Connection]:
        return set(self._users.get(user_id, ()))

    def admin_sockets(self) -> set[Connection]:
        return set(self._admins)

    def recipients(self, user_id: uuid.UUID | None, *, admins: bool = True) -> set[Connection]:
        """The user's sockets on this replica, plus every administrator's when ``admins``."""
        found = self.sockets_of(user_id) if user_id is not None else set()
        return found | self._admins if admins else found

    async def send_to_user(self, user_id: uuid.UUID, message: dict[str, Any]) -> None:
        """To every socket of that user on this replica (none elsewhere: see ``publish``)."""
        _fan_out(self.sockets_of(user_id), message)

    async def send_to_admins(self, message: dict[str, Any]) -> None:
        _fan_out(self._admins, message)

    async def send_to_user_and_admins(
        self, user_id: uuid.UUID | None, message: dict[str, Any]
    ) -> None:
        """The owner of something (may be ``None``) and the administrators, each socket once."""
        _fan_out(self.recipients(user_id), message)

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """To MQTT, hence to every replica — this one included, through ``on_topic``. Raises
        ``ServiceUnavailable`` when the broker stays unreachable for ``broker_wait_s``."""
        await self.link.publish(topic, payload, qos)

    # -- sockets (portal.realtime.socket) ---------------------------------------------------

    def attach(self, connection: Connection) -> None:
        if connection.is_admin:
            self._admins.add(connection)
        else:
            self._users.setdefault(connection.user_id, set()).add(connection)

    def detach(self, connection: Connection) -> None:
        self._admins.discard(connection)
        mine = self._users.get(connection.user_id)
        if mine is not None:
            mine.discard(connection)
            if not mine:
                del self._users[connection.user_id]

    async def dispatch(self, connection: Connection, message: dict[str, Any]) -> None:
        kind = str(message["type"])
        matches = [p for p in self._client_handlers if kind.startswith(p)]
        if not matches:
            await connection.send({"type": "error", "detail": f"unknown message type {kind!r}"})
            return
        handler = self._client_handlers[max(matches, key=len)]
        try:
            await handler(connection, message)
        except Exception:
            log.exception("handler for %r failed", kind[:64])
            await connection.send({"type": "error", "detail": f"{kind!r} failed on the server"})

    async def _pong(self, connection: Connection, _message: dict[str, Any]) -> None:
        await connection.send({"type": "pong"})

    # -- lifespan ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The lifespan's task: keep the event subscription; close every socket on stop."""
        try:
            await self.link.run()
            await asyncio.Event().wait()  # credentials refused: sockets still work, no events
        finally:
            for connection in [*self._admins, *(c for s in self._users.values() for c in s)]:
                connection.close(1001)  # going away: pages reconnect to another replica

    async def _on_event(self, topic: str, payload: bytes) -> None:
        for prefix, handler in self._topic_handlers:
            if topic.startswith(prefix):
                try:
                    await handler(topic, payload)
                except Exception:
                    log.exception("event handler for %s failed", topic[:120])


def _fan_out(connections: Iterable[Connection], message: dict[str, Any]) -> None:
    text = None
    for connection in connections:
        text = text or encode(message)
        connection.send_text(text)
