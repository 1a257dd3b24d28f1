"""Dependencies of the alert controllers and pages (registered on them, not app-wide)."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.alerts.push import AlertPush
from portal.alerts.services import AlertService
from portal.auth.schemas import CurrentUser


async def provide_alert_service(
    db_session: NamedDependency[AsyncSession], current_user: NamedDependency[CurrentUser]
) -> AlertService:
    return AlertService(db_session, current_user)


async def provide_alert_push(state: State) -> AlertPush:
    push: AlertPush = state.alert_push
    return push


def alert_dependencies() -> dict[str, Provide]:
    return {"alerts": Provide(provide_alert_service), "push": Provide(provide_alert_push)}
