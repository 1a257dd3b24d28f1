"""Chat pages: a client's chat with the administrators (/chat) and the administrators' inbox
(/admin/chat). The pages are shells: /static/chat.js loads the history from the API and keeps
it current over the portal's WebSocket, rendering user text with ``textContent`` only."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from contract.payloads import AlertRef
from portal.auth.guards import current_user, requires_admin
from portal.chat.providers import chat_dependencies
from portal.chat.services import ChatService
from portal.errors import BadRequest, NotFound, Unprocessable
from portal.pagekit import PAGE, render, see_other

Chat = NamedDependency[ChatService]


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


class ChatPages(Controller):
    opt = PAGE
    include_in_schema = False
    dependencies = chat_dependencies()

    @get("/chat")
    async def client_chat(self, request: Request[Any, Any, Any], chat: Chat) -> Template | Redirect:
        """``?alert=<id>``: the message being written refers to that alert (one of theirs)."""
        user = current_user(request)
        if user is not None and user.is_admin:
            return see_other("/admin/chat")
        conversation_id = await chat.own_conversation_id()
        alert: AlertRef | None = None
        error = None
        raw_alert = request.query_params.get("alert")
        if raw_alert:
            alert_id = _uuid(raw_alert)
            try:
                if alert_id is None:
                    raise BadRequest(f"alert {raw_alert[:40]!r} is not an alert id")
                alert = await chat.alert_ref(alert_id)
            except (BadRequest, Unprocessable):
                error = "That alert is not one of yours, so the message cannot refer to it."
        return render(
            request,
            "chat/client.html",
            conversation_id=conversation_id,
            alert=alert,
            error=error,
        )

    @get("/admin/chat", guards=[requires_admin])
    async def inbox(self, request: Request[Any, Any, Any], chat: Chat) -> Template:
        """``?c=<conversation id>`` opens that conversation."""
        conversations = await chat.list_conversations()
        open_id = _uuid(request.query_params.get("c"))
        if open_id is not None and all(c.id != open_id for c in conversations):
            try:
                conversations.append(await chat.get(open_id))  # older than the list shows
            except NotFound:
                open_id = None
        return render(
            request,
            "chat/inbox.html",
            conversations=conversations,
            open_id=open_id,
        )
