"""Dependencies of the sign-in controllers and pages (registered on them, not app-wide)."""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.authenticator import Authenticator
from portal.auth.services import AuthService
from portal.settings import PortalSettings


async def provide_auth_service(
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[PortalSettings],
    authenticator: NamedDependency[Authenticator],
) -> AuthService:
    return AuthService(db_session, settings, authenticator)


def auth_dependencies() -> dict[str, Provide]:
    return {"auth": Provide(provide_auth_service)}
