"""The SELECTs over the chat tables (portal.chat.tables), and how their rows become schemas.

Visibility is part of the SQL: every query that takes a conversation id also takes the viewer,
and a client's viewer adds ``client_id = <the client>``, so another client's conversation is
simply not found.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.enums import Role
from contract.payloads import AlertRef, ChatMessage
from portal.alerts.tables import alerts, visible_to
from portal.chat.schemas import ConversationOut
from portal.chat.tables import conversations, messages
from portal.devices.tables import devices
from portal.users.tables import users

PREVIEW_CHARS = 140


def other_side(role: Role) -> Role:
    """Whose messages a viewer of this role reads (and whose unread ones they count)."""
    return "client" if role == "admin" else "admin"


def visible(query: Select[Any], viewer_id: uuid.UUID, viewer_role: Role) -> Select[Any]:
    if viewer_role == "admin":
        return query
    return query.where(conversations.c.client_id == viewer_id)


async def client_of(
    session: AsyncSession, conversation_id: uuid.UUID, viewer_id: uuid.UUID, viewer_role: Role
) -> uuid.UUID | None:
    """The conversation's client if the viewer may see the conversation, else None."""
    query = select(conversations.c.client_id).where(conversations.c.id == conversation_id)
    found: uuid.UUID | None = (
        await session.execute(visible(query, viewer_id, viewer_role))
    ).scalar_one_or_none()
    return found


def conversation_query(viewer_role: Role) -> Select[Any]:
    of_this = messages.c.conversation_id == conversations.c.id
    unread = (
        select(func.count())
        .where(
            of_this,
            messages.c.sender_role == other_side(viewer_role),
            messages.c.read_at.is_(None),
        )
        .scalar_subquery()
    )
    last = select(messages.c.body).where(of_this).order_by(messages.c.id.desc()).limit(1)
    return select(
        conversations.c.id,
        conversations.c.client_id,
        users.c.username.label("client_username"),
        users.c.name.label("client_name"),
        conversations.c.created_at,
        conversations.c.last_message_at,
        func.left(last.scalar_subquery(), PREVIEW_CHARS).label("last_message"),
        unread.label("unread"),
    ).join(users, users.c.id == conversations.c.client_id)


def most_recent_first(query: Select[Any]) -> Select[Any]:
    return query.order_by(
        conversations.c.last_message_at.desc().nulls_last(),
        conversations.c.created_at.desc(),
        conversations.c.id,
    )


def to_conversation(row: Any) -> ConversationOut:
    return ConversationOut(**row._asdict())


def message_query() -> Select[Any]:
    """Messages with their sender's display name and, when they refer to one, the alert."""
    return (
        select(
            *messages.c,
            func.coalesce(func.nullif(users.c.name, ""), users.c.username).label("sender_name"),
            alerts.c.kind.label("alert_kind"),
            alerts.c.device_id.label("alert_device_id"),
            alerts.c.hour.label("alert_hour"),
            alerts.c.raised_at.label("alert_raised_at"),
            devices.c.name.label("alert_device_name"),
        )
        .outerjoin(users, users.c.id == messages.c.sender_id)
        .outerjoin(alerts, alerts.c.id == messages.c.alert_id)
        .outerjoin(devices, devices.c.id == alerts.c.device_id)
    )


def to_message(row: Any) -> ChatMessage:
    alert = None
    if row.alert_id is not None and row.alert_kind is not None:
        alert = AlertRef(
            id=row.alert_id,
            kind=row.alert_kind,
            device_id=row.alert_device_id,
            device_name=row.alert_device_name or "",
            hour=row.alert_hour,
            raised_at=row.alert_raised_at,
        )
    return ChatMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        sender_id=row.sender_id,
        sender_role=row.sender_role,
        sender_name=row.sender_name,
        body=row.body,
        alert_id=row.alert_id,
        alert=alert,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def alert_query(alert_id: uuid.UUID, client_id: uuid.UUID) -> Select[Any]:
    """The alert, only if it is the client's (their conversation may refer to nothing else)."""
    return (
        select(
            alerts.c.id,
            alerts.c.kind,
            alerts.c.device_id,
            func.coalesce(devices.c.name, "").label("device_name"),
            alerts.c.hour,
            alerts.c.raised_at,
        )
        .outerjoin(devices, devices.c.id == alerts.c.device_id)
        .where(alerts.c.id == alert_id, visible_to(client_id))
    )
