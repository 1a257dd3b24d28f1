"""Dependencies of the dashboard controller and pages (registered on them, not app-wide).

Both services find the device through ``DeviceService``, so its provider comes along."""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.schemas import CurrentUser
from portal.dashboards.overview import OverviewService
from portal.dashboards.services import ConsumptionService
from portal.devices.providers import device_dependencies
from portal.devices.services import DeviceService


async def provide_consumption(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    devices: NamedDependency[DeviceService],
) -> ConsumptionService:
    return ConsumptionService(db_session, current_user, devices)


async def provide_overview(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    devices: NamedDependency[DeviceService],
) -> OverviewService:
    return OverviewService(db_session, current_user, devices)


def dashboard_dependencies() -> dict[str, Provide]:
    return {
        **device_dependencies(),
        "consumption": Provide(provide_consumption),
        "overview": Provide(provide_overview),
    }
