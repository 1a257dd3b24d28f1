"""Dependencies of the device controllers and pages, and of the domains that read devices
through ``DeviceService`` (its query applies the ownership rule)."""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.schemas import CurrentUser
from portal.broker_link import BrokerLink
from portal.devices.services import DeviceService


async def provide_device_service(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[CurrentUser],
    broker: NamedDependency[BrokerLink],
) -> DeviceService:
    return DeviceService(db_session, current_user, meters=broker, events=broker)


def device_dependencies() -> dict[str, Provide]:
    return {"devices": Provide(provide_device_service)}
