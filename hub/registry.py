"""The device registry: what the hub knows of each device, cached from the database.

Kept current from ``ems/v1/events/devices``; a miss (a device created a moment ago whose event
has not arrived yet) is refreshed from the database before a reading is called unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from contract.enums import MeterKind
from contract.payloads import DeviceEvent


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_id: UUID
    owner_id: UUID | None
    max_hourly_kwh: float
    meter_kind: MeterKind
    rated_power_w: float | None
    interval_s: int


class DeviceRegistry:
    def __init__(self) -> None:
        self._devices: dict[UUID, DeviceInfo] = {}
        # Written by the MQTT thread (events) and read by the writer thread.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._devices)

    def get(self, device_id: UUID) -> DeviceInfo | None:
        return self._devices.get(device_id)

    def replace_all(self, devices: Iterable[DeviceInfo]) -> None:
        fresh = {d.device_id: d for d in devices}
        with self._lock:
            self._devices = fresh

    def update(self, devices: Iterable[DeviceInfo]) -> None:
        with self._lock:
            for d in devices:
                self._devices[d.device_id] = d

    def forget(self, device_ids: Iterable[UUID]) -> None:
        with self._lock:
            for device_id in device_ids:
                self._devices.pop(device_id, None)

    def apply(self, event: DeviceEvent) -> None:
        if event.action == "deleted":
            self.forget([event.device_id])
            return
        current = self._devices.get(event.device_id)
        info = DeviceInfo(
            device_id=event.device_id,
            owner_id=event.owner_id,
            max_hourly_kwh=event.max_hourly_kwh
            if event.max_hourly_kwh is not None
            else (current.max_hourly_kwh if current else float("inf")),
            meter_kind=event.meter_kind,
            rated_power_w=event.rated_power_w,
            interval_s=event.interval_s
            if event.interval_s is not None
            else (current.interval_s if current else 600),
        )
        self.update([info])
