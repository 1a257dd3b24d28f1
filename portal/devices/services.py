"""Devices: ownership is part of every query, credentials change inside the DB transaction.

Order for a change that touches the broker: write the row (uncommitted), change the broker, then
commit; if the broker fails the transaction rolls back, so there is never a device without
credentials or a deleted device whose credentials still work. Device events go out after the
commit (hubs must never hear of a device that does not exist).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contract.enums import DeviceAction
from contract.payloads import DeviceEvent
from portal.audit.services import record
from portal.auth.schemas import CurrentUser
from portal.broker_admin import new_meter_password
from portal.devices.schemas import (
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DeviceUpdate,
    MeterCredentials,
)
from portal.devices.tables import devices
from portal.errors import NotFound, Unprocessable
from portal.users.tables import users

log = logging.getLogger("portal.devices")


class MeterRegistry(Protocol):
    async def create_meter(self, device_id: uuid.UUID, password: str) -> None: ...
    async def delete_meter(self, device_id: uuid.UUID) -> None: ...


class DeviceEvents(Protocol):
    async def publish_device_event(self, event: DeviceEvent) -> None: ...


def device_query() -> Select[Any]:
    return select(*devices.c, users.c.username.label("owner_username")).outerjoin(
        users, users.c.id == devices.c.owner_id
    )


class DeviceService:
    def __init__(
        self,
        session: AsyncSession,
        actor: CurrentUser,
        meters: MeterRegistry,
        events: DeviceEvents,
    ) -> None:
        self.session = session
        self.actor = actor
        self.meters = meters
        self.events = events

    def _visible(self, query: Select[Any]) -> Select[Any]:
        """A client sees only their own devices; anyone else's is "not found", not forbidden."""
        return query if self.actor.is_admin else query.where(devices.c.owner_id == self.actor.id)

    async def list_devices(self, owner_id: uuid.UUID | None = None) -> list[DeviceOut]:
        query = self._visible(device_query()).order_by(devices.c.name, devices.c.id)
        if owner_id is not None:
            query = query.where(devices.c.owner_id == owner_id)
        return [DeviceOut(**row._asdict()) for row in await self.session.execute(query)]

    async def get(self, device_id: uuid.UUID, *, lock: bool = False) -> DeviceOut:
        query = self._visible(device_query()).where(devices.c.id == device_id)
        if lock:
            query = query.with_for_update(of=devices)
        row = (await self.session.execute(query)).one_or_none()
        if row is None:
            raise NotFound(f"device {device_id} not found")
        return DeviceOut(**row._asdict())

    async def create(self, data: DeviceCreate) -> DeviceCreated:
        fields = {f: getattr(data, f) for f in data.__struct_fields__}
        statement = insert(devices).values(**fields, credentials_rotated_at=func.now())
        new_id = (await self.session.execute(statement.returning(devices.c.id))).scalar_one()
        password = new_meter_password()
        device = await self.get(new_id)
        await record(self.session, self.actor, "create", "device", new_id, after=device)
        await self._on_broker(self.meters.create_meter(new_id, password))
        await self._commit_or_revoke(new_id)
        await self._publish(device, "created")
        return DeviceCreated(**_fields(device), mqtt_username=str(new_id), mqtt_password=password)

    async def update(self, device_id: uuid.UUID, data: DeviceUpdate) -> DeviceOut:
        before = await self.get(device_id, lock=True)
        await self.session.execute(
            update(devices)
            .where(devices.c.id == device_id)
            .values(**data.changes(), updated_at=func.now())
        )
        after = await self.get(device_id)
        await record(
            self.session, self.actor, "update", "device", device_id, before=before, after=after
        )
        await self.session.commit()
        await self._publish(after, "updated")
        return after

    async def set_owner(self, device_id: uuid.UUID, owner_id: uuid.UUID | None) -> DeviceOut:
        before = await self.get(device_id, lock=True)
        if owner_id is not None:
            role = (
                await self.session.execute(
                    select(users.c.role).where(users.c.id == owner_id).with_for_update()
                )
            ).scalar_one_or_none()
            if role is None:
                raise Unprocessable(f"owner_id: user {owner_id} does not exist")
            if role != "client":
                raise Unprocessable(
                    f"owner_id: user {owner_id} is an administrator; owners are clients"
                )
        await self.session.execute(
            update(devices)
            .where(devices.c.id == device_id)
            .values(owner_id=owner_id, updated_at=func.now())
        )
        after = await self.get(device_id)
        action = "assign" if owner_id is not None else "unassign"
        await record(
            self.session, self.actor, action, "device", device_id, before=before, after=after
        )
        await self.session.commit()
        await self._publish(after, "owner_changed")
        return after

    async def rotate_credentials(self, device_id: uuid.UUID) -> MeterCredentials:
        await self.get(device_id, lock=True)
        rotated_at: datetime = (
            await self.session.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(credentials_rotated_at=func.now())
                .returning(devices.c.credentials_rotated_at)
            )
        ).scalar_one()
        await record(
            self.session,
            self.actor,
            "rotate_credentials",
            "device",
            device_id,
            after={"credentials_rotated_at": rotated_at},
        )
        password = new_meter_password()
        # Creates or replaces the password.
        await self._on_broker(self.meters.create_meter(device_id, password))
        await self.session.commit()
        return MeterCredentials(
            device_id=device_id,
            mqtt_username=str(device_id),
            mqtt_password=password,
            rotated_at=rotated_at,
        )

    async def delete(self, device_id: uuid.UUID) -> None:
        before = await self.get(device_id, lock=True)
        await self.session.execute(delete(devices).where(devices.c.id == device_id))
        await record(self.session, self.actor, "delete", "device", device_id, before=before)
        await self._on_broker(self.meters.delete_meter(device_id))  # raises → the device stays
        await self.session.commit()
        await self._publish(before, "deleted")

    async def _on_broker(self, change: Awaitable[None]) -> None:
        """The broker's half of a change. If it fails, the row's half is rolled back at once:
        the rest of the request (a page showing the device again) must see the device as it
        is, not as the failed change left it in this session."""
        try:
            await change
        except Exception:
            await self.session.rollback()
            raise

    async def _commit_or_revoke(self, device_id: uuid.UUID) -> None:
        try:
            await self.session.commit()
        except Exception:
            # Credentials without a device must not outlive a failed commit.
            try:
                await self.meters.delete_meter(device_id)
            except Exception:
                log.exception("could not revoke credentials of uncommitted device %s", device_id)
            raise

    async def _publish(self, device: DeviceOut, action: DeviceAction) -> None:
        try:
            await self.events.publish_device_event(device.event(action))
        except Exception:  # best effort after commit; the change itself stands
            log.exception("device event %s %s failed", action, device.id)


def _fields(device: DeviceOut) -> dict[str, Any]:
    return {f: getattr(device, f) for f in device.__struct_fields__}
