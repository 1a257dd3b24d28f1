"""Live events: the latest reading and the current-hour total, at most a few per second."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from hub.energy import hour_floor
from hub.protocol import live_topic
from hub.registry import DeviceRegistry
from hub.storage import BatchOutcome

Publish = Callable[[str, bytes, int], None]


class LivePublisher:
    def __init__(self, publish: Publish, registry: DeviceRegistry, min_interval_s: float) -> None:
        self._publish = publish
        self._registry = registry
        self._min_interval = min_interval_s
        self._last_sent: dict[object, float] = {}

    def __call__(self, outcome: BatchOutcome) -> None:
        now = time.monotonic()
        hours = {rw.device_id: rw for rw in outcome.rewrites}
        for device_id, reading in outcome.latest.items():
            if now - self._last_sent.get(device_id, 0.0) < self._min_interval:
                continue
            self._last_sent[device_id] = now
            hour = hour_floor(reading.ts)
            rw = hours.get(device_id)
            row = next((r for r in rw.rows if r.hour == hour), None) if rw else None
            info = self._registry.get(device_id)
            payload = {
                "device_id": str(device_id),
                "ts": reading.ts.isoformat().replace("+00:00", "Z"),
                "energy_kwh": reading.energy_kwh,
                "power_w": reading.power_w,
                "hour": hour.isoformat().replace("+00:00", "Z"),
                "hour_kwh": row.energy_kwh if row else None,
                "quality": row.quality if row else None,
                "max_hourly_kwh": info.max_hourly_kwh if info else None,
                "owner_id": str(info.owner_id) if info and info.owner_id else None,
            }
            self._publish(live_topic(device_id), json.dumps(payload).encode(), 0)
