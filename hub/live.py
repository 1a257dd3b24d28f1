"""Live events: the latest reading and the current-hour total, at most a few per second."""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from contract.codec import encode_live_event
from contract.payloads import LiveEvent
from contract.topics import live_topic
from hub.energy import hour_floor
from hub.registry import DeviceRegistry
from hub.rollup_store import RollupOutcome

PublishMany = Callable[[list[tuple[str, bytes]]], None]


class LivePublisher:
    """After each commit, the newest reading of each device in it, at most one event per
    device per ``min_interval_s``; a suppressed one is sent when the interval has passed
    (``flush``), so a dashboard never stays behind the last reading."""

    def __init__(
        self, publish_many: PublishMany, registry: DeviceRegistry, min_interval_s: float
    ) -> None:
        self._publish_many = publish_many
        self._registry = registry
        self._min_interval = min_interval_s
        self._last_sent: dict[UUID, float] = {}
        self._pending: dict[UUID, LiveEvent] = {}

    def __call__(self, outcome: RollupOutcome) -> None:
        now = time.monotonic()
        out: list[tuple[str, bytes]] = []
        hours = {rw.device_id: rw for rw in outcome.rewrites}
        for device_id, reading in outcome.latest.items():
            hour = hour_floor(reading.ts)
            rw = hours.get(device_id)
            row = next((r for r in rw.rows if r.hour == hour), None) if rw else None
            info = self._registry.get(device_id)
            event = LiveEvent(
                device_id=str(device_id),
                ts=reading.ts,
                energy_kwh=reading.energy_kwh,
                power_w=reading.power_w,
                hour=hour,
                hour_kwh=row.energy_kwh if row else None,
                quality=row.quality if row else None,
                max_hourly_kwh=info.max_hourly_kwh if info else None,
                owner_id=str(info.owner_id) if info and info.owner_id else None,
            )
            if now - self._last_sent.get(device_id, -1e9) < self._min_interval:
                self._pending[device_id] = event
                continue
            out.append(self._sent(device_id, event, now))
        self._publish_many(out)

    def flush(self) -> None:
        """Send the suppressed events whose interval has passed."""
        if not self._pending:
            return
        now = time.monotonic()
        due = [d for d in self._pending if now - self._last_sent.get(d, -1e9) >= self._min_interval]
        self._publish_many([self._sent(d, self._pending[d], now) for d in due])

    def _sent(self, device_id: UUID, event: LiveEvent, now: float) -> tuple[str, bytes]:
        self._last_sent[device_id] = now
        self._pending.pop(device_id, None)
        return live_topic(device_id), encode_live_event(event)
