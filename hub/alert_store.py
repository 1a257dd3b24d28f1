"""Alerts: persisted in the rollup's transaction, published after it commits; the current
hour's limit and early warning also as a reading commits, from the running totals (``at_commit``).

At most one alert per (device, hour, kind) whichever hub replica evaluates it: the unique
index decides (INSERT … ON CONFLICT), and only the transaction that inserted (or re-opened a
retracted one) publishes. Delivery: ``ems/v1/events/alerts/{owner}``; a device with no owner
publishes under the nil UUID, which portals deliver to administrators only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from contract.codec import encode_alert_event
from contract.enums import AlertEventKind
from contract.payloads import AlertEvent
from contract.topics import alerts_topic
from hub.alerts import Decision, at_commit, evaluate
from hub.metrics import HubMetrics
from hub.registry import DeviceInfo, DeviceRegistry
from hub.rollup_store import RollupOutcome
from hub.running import LiveTotal
from hub.storage import PgStorage, pg_array

log = logging.getLogger("hub.alerts")
Conn = psycopg.Connection[tuple[object, ...]]
Publish = Callable[[str, bytes, int], None]
NO_OWNER = UUID(int=0)

_NAMES = (
    "id",
    "device_id",
    "user_id",
    "kind",
    "hour",
    "limit_kwh",
    "value_kwh",
    "projected_kwh",
    "final_kwh",
    "late",
    "status",
    "raised_at",
    "updated_at",
)
COLUMNS = ", ".join(_NAMES)
QUALIFIED = ", ".join(f"a.{name}" for name in _NAMES)

RAISE = f"""
INSERT INTO alerts AS a (device_id, user_id, kind, hour, limit_kwh, value_kwh, projected_kwh,
                         late)
SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[], %s::float8[],
                     %s::float8[], %s::float8[], %s::bool[])
ON CONFLICT (device_id, hour, kind) WHERE hour IS NOT NULL DO UPDATE
    SET status = 'open', value_kwh = excluded.value_kwh, late = excluded.late,
        raised_at = now(), updated_at = now(), acknowledged_at = NULL, acknowledged_by = NULL
    WHERE a.status = 'retracted'
RETURNING {QUALIFIED}
"""

RETRACT = f"""
UPDATE alerts a SET status = 'retracted', final_kwh = x.energy, updated_at = now()
FROM unnest(%s::uuid[], %s::timestamptz[], %s::float8[]) AS x(device_id, hour, energy)
WHERE a.device_id = x.device_id AND a.hour = x.hour AND a.kind = 'hourly_limit'
  AND a.status <> 'retracted'
RETURNING {QUALIFIED}
"""

FINAL = f"""
UPDATE alerts a SET final_kwh = x.energy, updated_at = now()
FROM unnest(%s::uuid[], %s::timestamptz[], %s::float8[]) AS x(device_id, hour, energy)
WHERE a.device_id = x.device_id AND a.hour = x.hour AND a.kind = 'hourly_limit'
  AND a.status <> 'retracted' AND a.final_kwh IS DISTINCT FROM x.energy
RETURNING {QUALIFIED}
"""

# Only once the device's stored hours are current (no rollup mark of it is left): an alert
# raised at commit, from the running total, comes before the rollup writes its hour, and the
# final value must be the hour the rollup stores, not the one before.
CLOSE_HOURS = f"""
UPDATE alerts a SET final_kwh = h.energy_kwh, updated_at = now()
FROM hourly_energy h
WHERE a.kind = 'hourly_limit' AND a.final_kwh IS NULL AND a.status <> 'retracted'
  AND a.hour < date_trunc('hour', now()) AND h.device_id = a.device_id AND h.hour = a.hour
  AND NOT EXISTS (SELECT 1 FROM rollup_log l WHERE a.device_id = ANY (l.device_ids))
RETURNING {QUALIFIED}
"""

STATUS = f"""
INSERT INTO alerts (device_id, user_id, kind)
SELECT id, owner_id, %s FROM devices WHERE id = ANY(%s::uuid[])
RETURNING {COLUMNS}
"""


def _event(event: AlertEventKind, row: tuple[Any, ...]) -> AlertEvent:
    return AlertEvent(event=event, **dict(zip(_NAMES, row, strict=True)))


def _raise_row(device_id: UUID, info: DeviceInfo, d: Decision) -> tuple[Any, ...]:
    """One row of RAISE's arrays, in its column order."""
    return (
        device_id,
        info.owner_id,
        d.kind,
        d.hour,
        info.max_hourly_kwh,
        d.value_kwh,
        d.projected_kwh,
        d.late,
    )


class AlertEngine:
    def __init__(
        self,
        registry: DeviceRegistry,
        publish: Publish,
        metrics: HubMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._publish = publish
        self._metrics = metrics
        self.clock = clock  # a test seam: the hour the rules take as current
        self._pending: list[AlertEvent] = []
        # Per device: the hour and the kinds decided for it (see _decided_at_commit).
        self._memo: dict[UUID, tuple[datetime, set[str]]] = {}
        self._memo_lock = threading.Lock()

    def after_rollup(self, conn: Conn, outcome: RollupOutcome) -> None:
        """Inside the rollup transaction: evaluate the rewritten hours, persist decisions."""
        self._pending = []
        now = self.clock()
        raised: list[tuple[Any, ...]] = []
        retract: list[tuple[UUID, datetime, float]] = []
        final: list[tuple[UUID, datetime, float]] = []
        for rw in outcome.rewrites:
            info = self._registry.get(rw.device_id)
            if info is None:
                continue
            latest = outcome.latest.get(rw.device_id)
            for d in evaluate(info.max_hourly_kwh, rw.rows, latest.ts if latest else None, now):
                if d.kind == "retract":
                    retract.append((rw.device_id, d.hour, d.value_kwh))
                    self._decided_at_commit(rw.device_id, d.hour, "hourly_limit", False)
                    continue
                self._decided_at_commit(rw.device_id, d.hour, d.kind, True)
                raised.append(_raise_row(rw.device_id, info, d))
                if d.late:
                    final.append((rw.device_id, d.hour, d.value_kwh))
        if raised:
            self._pending += self._raise(conn, raised)
        steps: tuple[tuple[str, list[Any], AlertEventKind], ...] = (
            (RETRACT, retract, "retracted"),
            (FINAL, final, "updated"),
        )
        for sql, rows, name in steps:
            if rows:
                ids, hours, energy = zip(*rows, strict=True)
                params = [pg_array(ids), pg_array(h.isoformat() for h in hours), pg_array(energy)]
                self._pending += [_event(name, row) for row in conn.execute(sql, params)]

    def _raise(self, conn: Conn, raised: list[tuple[Any, ...]]) -> list[AlertEvent]:
        """Insert the raised alerts; the events of those this statement inserted or re-opened
        (one per device, hour and kind: the unique index decides across transactions)."""
        cols = list(zip(*raised, strict=True))
        params = [
            pg_array(cols[0]),
            pg_array(cols[1]),  # owners: None (no owner) is NULL
            pg_array(cols[2]),
            pg_array(h.isoformat() for h in cols[3]),
            pg_array(cols[4]),
            pg_array(cols[5]),
            pg_array(cols[6]),  # projections: None is NULL
            pg_array(cols[7]),
        ]
        events = []
        for row in conn.execute(RAISE, params):
            events.append(_event("raised", row))
            self._metrics.alerts.labels(str(row[3])).inc()
        return events

    def _decided_at_commit(self, device_id: UUID, hour: datetime, kind: str, done: bool) -> None:
        """Remember (``done``) or forget that ``kind`` was decided for the device's hour, so
        that the commit path asks the database once per device-hour, not once per batch."""
        with self._memo_lock:
            memo = self._memo.get(device_id)
            if memo is None or memo[0] != hour:
                if not done:
                    return
                memo = self._memo[device_id] = (hour, set())
            if done:
                memo[1].add(kind)
            else:
                memo[1].discard(kind)

    def at_commit(self, conn: Conn, totals: Sequence[LiveTotal]) -> None:
        """On a writer thread, after its batch committed: the hourly limit and the early
        warning decided from the running totals (``hub.alerts.at_commit``). A database
        statement only when a decision is new for its device-hour (rare); the unique index
        keeps it to one alert per device, hour and kind whichever path or replica raises it."""
        now = self.clock()
        raised: list[tuple[Any, ...]] = []
        with self._memo_lock:
            for total in totals:
                if not total.clean or total.hour_kwh is None:
                    continue
                info = self._registry.get(total.device_id)
                if info is None:
                    continue
                memo = self._memo.get(total.device_id)
                if memo is not None and memo[0] == total.hour and len(memo[1]) == 2:
                    continue  # both kinds decided for this hour: nothing more to raise
                d = at_commit(
                    info.max_hourly_kwh, total.hour, total.hour_kwh, total.reading.ts, now
                )
                if d is None or (memo is not None and memo[0] == d.hour and d.kind in memo[1]):
                    continue
                if memo is None or memo[0] != d.hour:
                    memo = self._memo[total.device_id] = (d.hour, set())
                memo[1].add(d.kind)
                raised.append(_raise_row(total.device_id, info, d))
        if not raised:
            return
        with conn.transaction():
            events = self._raise(conn, raised)
        for event in events:
            self._send(event)

    def publish_pending(self) -> None:
        """After the commit: now the alerts exist for every reader, push them live."""
        pending, self._pending = self._pending, []
        for event in pending:
            self._send(event)

    def close_hours(self, conn: Conn) -> None:
        """Record the final value of alerts whose hour has closed (its own transaction)."""
        with conn.transaction():
            rows = conn.execute(CLOSE_HOURS).fetchall()
        for row in rows:
            self._send(_event("updated", row))

    def status_changed(self, conn: Conn, device_ids: list[UUID], state: str) -> None:
        """Offline (last will, staleness) or back online: an alert with history."""
        if not device_ids:
            return
        kind = "offline" if state == "offline" else "online"
        with conn.transaction():
            rows = conn.execute(STATUS, (kind, pg_array(device_ids))).fetchall()
        for row in rows:
            self._metrics.alerts.labels(kind).inc()
            self._send(_event("raised", row))

    def on(self, storage: PgStorage) -> StorageAlerts:
        """This engine's writer-side operations, on ``storage``'s connection."""
        return StorageAlerts(self, storage)

    def _send(self, event: AlertEvent) -> None:
        self._publish(alerts_topic(event.user_id or NO_OWNER), encode_alert_event(event), 1)


class StorageAlerts:
    """Status and hour-closing alerts on one writer's storage connection: what a
    ``BatchWriter`` calls (``hub.writer.WriterAlerts``), so that the writer itself never
    touches a connection and runs on any ``hub.storage.Storage``."""

    def __init__(self, engine: AlertEngine, storage: PgStorage) -> None:
        self._engine = engine
        self._storage = storage

    def status_changed(self, device_ids: list[UUID], state: str) -> None:
        self._engine.status_changed(self._storage.conn, device_ids, state)

    def close_hours(self) -> None:
        self._engine.close_hours(self._storage.conn)

    def at_commit(self, totals: Sequence[LiveTotal]) -> None:
        try:
            self._engine.at_commit(self._storage.conn, totals)
        except psycopg.Error as exc:
            # The readings are stored; the rollup still decides the alert (a moment later).
            log.error("could not record alerts at commit: %s", exc)
            self._storage.reset()
