"""Dependencies of the user controllers and pages (registered on them, not app-wide)."""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.schemas import CurrentUser
from portal.broker_link import BrokerLink
from portal.users.services import UserService


async def provide_user_service(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    broker: NamedDependency[BrokerLink],
) -> UserService:
    return UserService(db_session, current_user, broker)


def user_dependencies() -> dict[str, Provide]:
    return {"users": Provide(provide_user_service)}
