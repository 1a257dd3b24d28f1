"""Chat shapes: conversations, messages, pages of history, read receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from contract.enums import Role
from contract.payloads import ChatMessage
from portal.validation import VISIBLE_TEXT_PATTERN, check_text, documented

MAX_BODY = 4000  # the database's CHECK (length(body) BETWEEN 1 AND 4000)
DEFAULT_PAGE = 50
MAX_PAGE = 200

Body = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_BODY,
        description=f"plain text, 1–{MAX_BODY} characters; shown as text, never as HTML",
        extra_json_schema=documented(pattern=VISIBLE_TEXT_PATTERN),
    ),
]
# Ids stay within JavaScript's safe integers (the browser reads them) and within what a JSON
# Schema validator compares exactly as a double (2**63 - 1 is not: 2**63 passed as "<= it").
MAX_MESSAGE_ID = 2**53 - 1
MessageId = Annotated[int, msgspec.Meta(ge=1, le=MAX_MESSAGE_ID)]


class MessagePage(msgspec.Struct, kw_only=True):
    """Oldest first within the page; ``has_more``: older messages exist (ask ``before`` the
    first id of this page)."""

    messages: list[ChatMessage]
    has_more: bool


class ConversationOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    client_id: uuid.UUID
    client_username: str
    client_name: str
    created_at: datetime
    last_message_at: datetime | None
    last_message: str | None = None
    # The other side's messages that the viewer's side (the client, or the administrators)
    # has not read yet.
    unread: int = 0


class MessageCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    body: Body
    alert_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        check_text("body", self.body)
        if not self.body.strip():
            raise ValueError("body: a message needs some text")


class ReadRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    up_to: MessageId


class ReadReceipt(msgspec.Struct, kw_only=True):
    """``marked``: how many messages this call marked read; ``up_to``: the highest of them."""

    conversation_id: uuid.UUID
    reader_role: Role
    marked: int
    up_to: int | None
    read_at: datetime | None
