"""/api/v1/conversations: a client's conversation with the administrators, and all of them for
administrators. Another client's conversation is a 404 (the queries filter on the caller)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from contract.payloads import ChatMessage
from portal.chat.providers import chat_dependencies
from portal.chat.schemas import (
    DEFAULT_PAGE,
    MAX_MESSAGE_ID,
    MAX_PAGE,
    ConversationOut,
    MessageCreate,
    MessagePage,
    ReadReceipt,
    ReadRequest,
)
from portal.chat.services import ChatService
from portal.errors import TooManyRequests, Unprocessable

Chat = NamedDependency[ChatService]
Before = Annotated[
    int | None,
    QueryParameter(
        ge=1, le=MAX_MESSAGE_ID, description="only messages older than this message id (next page)"
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="messages per page")]
ListLimit = Annotated[int, QueryParameter(ge=1, le=1000, description="conversations at most")]


class ChatController(Controller):
    path = "/api/v1/conversations"
    tags = ("chat",)
    dependencies = chat_dependencies()

    @get(
        "/",
        summary="Conversations: administrators all of them, most recent first; a client their "
        "own one (created on first use)",
        description="`unread` counts the other side's messages the caller's side has not read.",
    )
    async def list_conversations(self, chat: Chat, limit: ListLimit = 100) -> list[ConversationOut]:
        return await chat.list_conversations(limit)

    @get("/{conversation_id:uuid}", summary="One conversation (a client's own only)")
    async def get_conversation(
        self, chat: Chat, conversation_id: FromPath[uuid.UUID]
    ) -> ConversationOut:
        return await chat.get(conversation_id)

    @get(
        "/{conversation_id:uuid}/messages",
        summary="History, newest page first; each page is oldest first",
        description="Pass `before` = the first message id of a page to get the page before it.",
    )
    async def history(
        self,
        chat: Chat,
        conversation_id: FromPath[uuid.UUID],
        before: Before = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> MessagePage:
        return await chat.history(conversation_id, before=before, limit=limit)

    @post(
        "/{conversation_id:uuid}/messages",
        summary="Send a message (optionally about one of the client's alerts)",
        description="At most 20 messages per user every 10 s (then 429 with Retry-After).",
        opt={"errors": (Unprocessable, TooManyRequests)},
    )
    async def send(
        self, chat: Chat, conversation_id: FromPath[uuid.UUID], data: JSONBody[MessageCreate]
    ) -> ChatMessage:
        return await chat.post(conversation_id, data)

    @post(
        "/{conversation_id:uuid}/read",
        status_code=200,
        summary="Mark the other side's messages up to a message id as read (a read receipt)",
    )
    async def mark_read(
        self, chat: Chat, conversation_id: FromPath[uuid.UUID], data: JSONBody[ReadRequest]
    ) -> ReadReceipt:
        return await chat.mark_read(conversation_id, data.up_to)
