"""Application-wide dependencies: ``create_app`` registers ``dependencies()`` once.

Handlers name what they need (``users: NamedDependency[UserService]``); every service gets the
request's database session and the signed-in user.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.services import AuditService
from portal.auth.authenticator import Authenticator
from portal.auth.guards import current_user
from portal.auth.schemas import CurrentUser
from portal.auth.services import AuthService
from portal.broker_link import BrokerLink
from portal.db import provide_db_session
from portal.devices.services import DeviceService
from portal.errors import NotAuthenticated
from portal.settings import PortalSettings
from portal.users.services import UserService


async def provide_current_user(request: Request[Any, Any, Any]) -> CurrentUser:
    user = current_user(request)
    if user is None:  # the guards already refused; this keeps handlers honest
        raise NotAuthenticated("sign in first: send a valid Bearer token or session cookie")
    return user


async def provide_broker(state: State) -> BrokerLink:
    link: BrokerLink = state.broker
    return link


async def provide_authenticator(state: State) -> Authenticator:
    authenticator: Authenticator = state.authenticator
    return authenticator


async def provide_settings(state: State) -> PortalSettings:
    settings: PortalSettings = state.settings
    return settings


async def provide_auth_service(
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[PortalSettings],
    authenticator: NamedDependency[Authenticator],
) -> AuthService:
    return AuthService(db_session, settings, authenticator)


async def provide_user_service(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    broker: NamedDependency[BrokerLink],
) -> UserService:
    return UserService(db_session, current_user, broker)


async def provide_device_service(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    broker: NamedDependency[BrokerLink],
) -> DeviceService:
    return DeviceService(db_session, current_user, meters=broker, events=broker)


async def provide_audit_service(db_session: NamedDependency[AsyncSession]) -> AuditService:
    return AuditService(db_session)


def dependencies() -> dict[str, Provide]:
    return {
        "db_session": Provide(provide_db_session),
        "current_user": Provide(provide_current_user),
        "broker": Provide(provide_broker),
        "authenticator": Provide(provide_authenticator),
        "settings": Provide(provide_settings),
        "auth": Provide(provide_auth_service),
        "users": Provide(provide_user_service),
        "devices": Provide(provide_device_service),
        "audit": Provide(provide_audit_service),
    }
