"""Live events: the latest reading and the current-hour total, at most a few per second."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterable
from uuid import UUID

from contract.codec import encode_live_event
from contract.payloads import LiveEvent, Reading
from contract.topics import live_topic
from hub.registry import DeviceInfo, DeviceRegistry
from hub.rollup_store import RollupOutcome
from hub.running import LiveTotal, RunningTotals

PublishMany = Callable[[list[tuple[str, bytes]]], None]

# A device's id as text and its live topic, once per device: formatting a UUID costs about a
# microsecond, twice per event (the fleet's ids repeat all day).
_id_text = functools.lru_cache(maxsize=100_000)(str)
_topic = functools.lru_cache(maxsize=100_000)(live_topic)


class LivePublisher:
    """Live events from the running totals (``hub.running``): at once when a batch commits
    (``committed``, on a writer thread), and as corrections after a rollup pass (``__call__``,
    on the rollup thread). At most one event per device per ``min_interval_s``; a suppressed
    one (always the newest) is sent when the interval has passed (``flush``, due in
    ``next_due()`` seconds), so a dashboard never stays behind the last reading.

    One lock around each whole step (totals, then the socket write): a correction computed
    before a writer's newer total can never be sent after it."""

    def __init__(
        self,
        publish_many: PublishMany,
        registry: DeviceRegistry,
        min_interval_s: float,
        running: RunningTotals | None = None,
    ) -> None:
        self._publish_many = publish_many
        self._registry = registry
        self._min_interval = min_interval_s
        self.running = running if running is not None else RunningTotals(registry.get)
        self._last_sent: dict[UUID, float] = {}
        # A held-back total with the device as the registry had it then: its event is built
        # only if it is sent. Draining a backlog, most are replaced by a newer total first
        # (bench/ingest.py's stream of 200,000 readings of 10,000 meters, replayed through
        # this class alone: 65,000 events sent of 200,000 totals). bench/ingest.py's live
        # stage: 8.8-9.0 µs CPU per reading building every event, 6.3 µs building only these.
        self._pending: dict[UUID, tuple[LiveTotal, DeviceInfo | None]] = {}
        self._lock = threading.Lock()

    def committed(self, readings: Iterable[Reading]) -> list[LiveTotal]:
        """A batch's readings just committed: publish the devices' new totals; returned for
        the alert rules."""
        with self._lock:
            totals = self.running.committed(readings)
            self._send(totals)
        return totals

    def __call__(self, outcome: RollupOutcome) -> None:
        """A rollup pass committed: re-seed the running totals, publish what it corrected."""
        with self._lock:
            self._send(self.running.reseed(outcome))

    def _send(self, totals: list[LiveTotal]) -> None:
        if not totals:
            return
        now = time.monotonic()
        out: list[tuple[str, bytes]] = []
        last_sent, pending, interval = self._last_sent, self._pending, self._min_interval
        info_of = self._registry.get
        for total in totals:
            device_id = total.device_id
            if now - last_sent.get(device_id, -1e9) < interval:
                pending[device_id] = (total, info_of(device_id))
                continue
            out.append(self._sent(device_id, total, info_of(device_id), now))
        self._publish_many(out)

    @staticmethod
    def _event(total: LiveTotal, info: DeviceInfo | None) -> LiveEvent:
        reading = total.reading
        return LiveEvent(
            device_id=_id_text(total.device_id),
            ts=reading.ts,
            energy_kwh=reading.energy_kwh,
            power_w=reading.power_w,
            hour=total.hour,
            hour_kwh=total.hour_kwh,
            quality=total.quality,
            max_hourly_kwh=info.max_hourly_kwh if info else None,
            owner_id=_id_text(info.owner_id) if info and info.owner_id else None,
        )

    def next_due(self) -> float:
        """Seconds until the first suppressed event may be sent (inf: none is waiting)."""
        with self._lock:
            if not self._pending:
                return math.inf
            first = min(self._last_sent.get(d, -1e9) for d in self._pending)
        return max(0.0, first + self._min_interval - time.monotonic())

    def flush(self) -> None:
        """Send the suppressed events whose interval has passed."""
        with self._lock:
            if not self._pending:
                return
            now = time.monotonic()
            last, interval = self._last_sent, self._min_interval
            due = [d for d in self._pending if now - last.get(d, -1e9) >= interval]
            self._publish_many([self._sent(d, *self._pending[d], now) for d in due])

    def _sent(
        self, device_id: UUID, total: LiveTotal, info: DeviceInfo | None, now: float
    ) -> tuple[str, bytes]:
        self._last_sent[device_id] = now
        self._pending.pop(device_id, None)
        return _topic(device_id), encode_live_event(self._event(total, info))
