"""Application-wide dependencies: ``create_app`` registers ``dependencies()`` once.

These are what every domain builds on: the request's database session, the signed-in user,
the settings, the broker link and the authenticator. The portal has one way to inject a
domain's service: the domain's ``providers.py`` holds its ``provide_*`` functions and one
``<domain>_dependencies()`` returning their ``Provide`` dict, and that domain's controllers and
pages register it (``dependencies = user_dependencies()``), merging another domain's dict when
they need its service too. Handlers name what they need (``users: NamedDependency[UserService]``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from portal.auth.authenticator import Authenticator
from portal.auth.guards import current_user
from portal.auth.schemas import CurrentUser
from portal.broker_link import BrokerLink
from portal.db import provide_db_session
from portal.errors import NotAuthenticated
from portal.settings import PortalSettings


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


def dependencies() -> dict[str, Provide]:
    return {
        "db_session": Provide(provide_db_session),
        "current_user": Provide(provide_current_user),
        "broker": Provide(provide_broker),
        "authenticator": Provide(provide_authenticator),
        "settings": Provide(provide_settings),
    }
