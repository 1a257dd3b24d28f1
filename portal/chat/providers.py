"""Dependencies of the chat controller and pages (registered on them, not app-wide)."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.schemas import CurrentUser
from portal.chat.relay import ChatRelay
from portal.chat.services import ChatService


async def provide_chat_service(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    state: State,
) -> ChatService:
    relay: ChatRelay = state.chat
    return ChatService(db_session, current_user, relay, relay.message_limit)


def chat_dependencies() -> dict[str, Provide]:
    return {"chat": Provide(provide_chat_service)}
