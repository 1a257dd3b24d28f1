"""Who owns a device, for routing its events: a small cache in front of the database.

Live events carry the owner; status messages and alerts do not carry the device's name, and
status messages not even the owner. Entries live ``ttl_s`` and are dropped at once when a
device event (created, updated, owner changed, deleted) arrives on ``ems/v1/events/devices``,
so an ownership change routes correctly from the next event on.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contract.codec import decode_device_event
from contract.reasons import DecodeError
from portal.devices.tables import devices

log = logging.getLogger("portal.realtime")
_MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: uuid.UUID
    name: str
    owner_id: uuid.UUID | None


class DeviceDirectory:
    def __init__(self, engine: AsyncEngine, *, ttl_s: float = 300.0) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._cache: dict[uuid.UUID, tuple[DeviceInfo | None, float]] = {}

    async def get(self, device_id: uuid.UUID) -> DeviceInfo | None:
        """The device's name and owner; ``None`` when it does not exist (any more)."""
        now = time.monotonic()
        cached = self._cache.get(device_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        query = select(devices.c.id, devices.c.name, devices.c.owner_id).where(
            devices.c.id == device_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        info = None if row is None else DeviceInfo(row.id, row.name, row.owner_id)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[device_id] = (info, now + self._ttl_s)
        return info

    def forget(self, device_id: uuid.UUID) -> None:
        self._cache.pop(device_id, None)

    async def on_device_event(self, _topic: str, payload: bytes) -> None:
        try:
            event = decode_device_event(payload)
        except DecodeError as exc:
            log.warning("ignoring a malformed device event: %s", exc)
            return
        self.forget(event.device_id)
