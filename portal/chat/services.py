"""Chat: one conversation per client with the administrators, persisted messages, read state.

The administrators are one side: any of them answers, and one administrator reading a message
reads it for all of them (``messages.read_at`` is "read by the other side"). Every change is
committed first and announced after (``ChatPublisher``), so what a socket shows is always in
the database; an announcement that fails is logged and the history still has the message.
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contract.payloads import AlertRef, ChatEvent, ChatMessage, MessageEvent, ReadEvent
from portal.auth.schemas import CurrentUser
from portal.chat.queries import (
    alert_query,
    client_of,
    conversation_query,
    message_query,
    most_recent_first,
    other_side,
    to_conversation,
    to_message,
    visible,
)
from portal.chat.ratelimit import SlidingWindowLimit
from portal.chat.schemas import (
    DEFAULT_PAGE,
    ConversationOut,
    MessageCreate,
    MessagePage,
    ReadReceipt,
)
from portal.chat.tables import conversations, messages
from portal.errors import BadRequest, NotFound, Unprocessable

log = logging.getLogger("portal.chat")


class ChatPublisher(Protocol):
    async def publish(self, event: ChatEvent) -> None: ...


class ChatService:
    def __init__(
        self,
        session: AsyncSession,
        actor: CurrentUser,
        publisher: ChatPublisher,
        message_limit: SlidingWindowLimit,
    ) -> None:
        self.session = session
        self.actor = actor
        self.publisher = publisher
        self.message_limit = message_limit

    async def list_conversations(self, limit: int = 100) -> list[ConversationOut]:
        """Administrators: all, most recent first. A client: their own, created on first use."""
        if not self.actor.is_admin:
            await self.own_conversation_id()
        query = visible(conversation_query(self.actor.role), self.actor.id, self.actor.role)
        rows = await self.session.execute(most_recent_first(query).limit(limit))
        return [to_conversation(row) for row in rows]

    async def own_conversation_id(self) -> uuid.UUID:
        """A client's conversation with the administrators, created if they have none yet."""
        if self.actor.is_admin:
            raise BadRequest("administrators have no conversation of their own; open a client's")
        await self.session.execute(
            pg_insert(conversations).values(client_id=self.actor.id).on_conflict_do_nothing()
        )
        found: uuid.UUID = (
            await self.session.execute(
                select(conversations.c.id).where(conversations.c.client_id == self.actor.id)
            )
        ).scalar_one()
        await self.session.commit()
        return found

    async def get(self, conversation_id: uuid.UUID) -> ConversationOut:
        query = visible(conversation_query(self.actor.role), self.actor.id, self.actor.role)
        row = (
            await self.session.execute(query.where(conversations.c.id == conversation_id))
        ).one_or_none()
        if row is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return to_conversation(row)

    async def history(
        self, conversation_id: uuid.UUID, *, before: int | None = None, limit: int = DEFAULT_PAGE
    ) -> MessagePage:
        """The newest ``limit`` messages (older than ``before``), returned oldest first."""
        await self._client_of(conversation_id)
        query = message_query().where(messages.c.conversation_id == conversation_id)
        if before is not None:
            query = query.where(messages.c.id < before)
        rows = list(
            await self.session.execute(query.order_by(messages.c.id.desc()).limit(limit + 1))
        )
        page = [to_message(row) for row in reversed(rows[:limit])]
        return MessagePage(messages=page, has_more=len(rows) > limit)

    async def post(self, conversation_id: uuid.UUID, data: MessageCreate) -> ChatMessage:
        self.message_limit.hit(self.actor.id)
        client_id = await self._client_of(conversation_id)
        if data.alert_id is not None:
            await self._alert(data.alert_id, client_id)
        new = (
            await self.session.execute(
                insert(messages)
                .values(
                    conversation_id=conversation_id,
                    sender_id=self.actor.id,
                    sender_role=self.actor.role,
                    body=data.body,
                    alert_id=data.alert_id,
                )
                .returning(messages.c.id, messages.c.created_at)
            )
        ).one()
        await self.session.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(last_message_at=func.greatest(conversations.c.last_message_at, new.created_at))
        )
        row = (await self.session.execute(message_query().where(messages.c.id == new.id))).one()
        await self.session.commit()
        message = to_message(row)
        await self._announce(
            MessageEvent(conversation_id=conversation_id, client_id=client_id, message=message)
        )
        return message

    async def mark_read(self, conversation_id: uuid.UUID, up_to: int) -> ReadReceipt:
        """The other side's messages up to ``up_to`` are read now (earlier reads are kept)."""
        client_id = await self._client_of(conversation_id)
        rows = list(
            await self.session.execute(
                update(messages)
                .where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.id <= up_to,
                    messages.c.sender_role == other_side(self.actor.role),
                    messages.c.read_at.is_(None),
                )
                .values(read_at=func.now())
                .returning(messages.c.id, messages.c.read_at)
            )
        )
        await self.session.commit()
        receipt = ReadReceipt(
            conversation_id=conversation_id,
            reader_role=self.actor.role,
            marked=len(rows),
            up_to=max((r.id for r in rows), default=None),
            read_at=rows[0].read_at if rows else None,
        )
        if receipt.up_to is not None and receipt.read_at is not None:
            await self._announce(
                ReadEvent(
                    conversation_id=conversation_id,
                    client_id=client_id,
                    reader_id=self.actor.id,
                    reader_role=self.actor.role,
                    up_to=receipt.up_to,
                    read_at=receipt.read_at,
                )
            )
        return receipt

    async def alert_ref(self, alert_id: uuid.UUID) -> AlertRef:
        """One of the signed-in client's alerts, for a message to refer to."""
        return await self._alert(alert_id, self.actor.id)

    async def _alert(self, alert_id: uuid.UUID, client_id: uuid.UUID) -> AlertRef:
        row = (await self.session.execute(alert_query(alert_id, client_id))).one_or_none()
        if row is None:
            whose = "yours" if client_id == self.actor.id else "this client's"
            raise Unprocessable(f"alert_id: alert {alert_id} is not one of {whose}")
        return AlertRef(**row._asdict())

    async def _client_of(self, conversation_id: uuid.UUID) -> uuid.UUID:
        found = await client_of(self.session, conversation_id, self.actor.id, self.actor.role)
        if found is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return found

    async def _announce(self, event: ChatEvent) -> None:
        try:
            await self.publisher.publish(event)
        except Exception:  # best effort after commit: the message is in the history anyway
            log.exception(
                "chat %s event for %s not sent", type(event).__name__, event.conversation_id
            )
