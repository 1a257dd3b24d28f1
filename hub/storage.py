"""PostgreSQL side of the hub: one connection, two kinds of transaction.

Ingest (``commit_batch``): a batch is committed whole or not at all — readings (COPY,
idempotent on (device_id, ts)), a rollup mark for each device that got new readings, dead
letters and device last-seen times. Only after the commit are its MQTT messages acknowledged,
so a crash at any instant loses nothing (the broker redelivers) and counts nothing twice (the
key absorbs the redelivery).

Rollup (``rollup_pending``): takes marked devices (SKIP LOCKED, so hub replicas share the work),
recomputes their hours from the readings and clears the marks, in one transaction. Many
readings of a device between two rollups cost one recompute: rollup work grows with the number
of active devices, not with the reading rate.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg

from hub.batch import DeadLetter, PreparedBatch, conflict_letter, same_value
from hub.protocol import Reading, encode_reading, readings_topic, truncate_payload
from hub.registry import DeviceInfo

TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS _incoming (
    device_id uuid, ts timestamptz, energy_kwh float8, seq int8, power_w float8
) ON COMMIT DELETE ROWS;
"""


def pg_array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of UUIDs or timestamps: far cheaper to send than a list
    parameter, which psycopg adapts element by element."""
    return "{" + ",".join([_quoted(v) for v in values]) + "}"


@functools.lru_cache(maxsize=100_000)
def _uuid_text(value: UUID) -> str:
    return f'"{value}"'  # formatting a UUID is slow; a fleet's ids repeat all day


def _quoted(value: object) -> str:
    return _uuid_text(value) if isinstance(value, UUID) else f'"{value}"'


DEVICE_COLUMNS = "id, owner_id, max_hourly_kwh, meter_kind, rated_power_w, interval_s"


def _device(row: tuple[object, ...]) -> DeviceInfo:
    return DeviceInfo(
        device_id=row[0],  # type: ignore[arg-type]
        owner_id=row[1],  # type: ignore[arg-type]
        max_hourly_kwh=float(row[2]),  # type: ignore[arg-type]
        meter_kind="interval" if row[3] == "interval" else "cumulative",
        rated_power_w=None if row[4] is None else float(row[4]),  # type: ignore[arg-type]
        interval_s=int(row[5]),  # type: ignore[call-overload]
    )


@dataclass(slots=True)
class BatchOutcome:
    stored: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    back_online: list[UUID] = field(default_factory=list)  # offline meters that sent a reading


class PgStorage:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    @property
    def conn(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            # TimeZone=UTC: timestamps come back with datetime.UTC, which the energy maths
            # takes on its fast path (no zone conversion per reading).
            self._conn = psycopg.connect(
                self._dsn, autocommit=False, connect_timeout=5, options="-c TimeZone=UTC"
            )
            with self._conn.transaction():
                self._conn.execute(TEMP_TABLES)
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def reset(self) -> None:
        """After an error: drop the connection; the next use reconnects."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def ping(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT 1")

    def load_devices(self, ids: Iterable[UUID] | None = None) -> list[DeviceInfo]:
        with self.conn.transaction():
            if ids is None:
                rows = self.conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices").fetchall()
            else:
                rows = self.conn.execute(
                    f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ANY(%s)", (list(ids),)
                ).fetchall()
        return [_device(r) for r in rows]

    def commit_batch(self, batch: PreparedBatch) -> BatchOutcome:
        out = BatchOutcome(duplicates=batch.duplicates, dead=list(batch.dead))
        conn = self.conn
        with conn.transaction():
            readings = batch.readings
            if readings:
                readings = self._known_devices(conn, readings, out)
            if readings:
                inserted = self._insert(conn, readings, out)
                self._mark_dirty(conn, inserted)
                out.back_online = self._touch_status(conn, sorted({r.device_id for r in readings}))
            if out.dead:
                with conn.cursor().copy(
                    "COPY dead_letters (topic, device_id, reason, detail, payload) FROM STDIN"
                ) as copy:
                    for d in out.dead:
                        copy.write_row((d.topic, d.device_id, d.reason, d.detail, d.payload))
        return out

    def _known_devices(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        readings: list[Reading],
        out: BatchOutcome,
    ) -> list[Reading]:
        # A device deleted since the registry saw it must not fail the batch (the readings'
        # foreign key would): its readings are dead-lettered instead.
        ids = {r.device_id for r in readings}
        rows = conn.execute(
            "SELECT id FROM devices WHERE id = ANY(%s::uuid[])", (pg_array(ids),)
        ).fetchall()
        existing = {r[0] for r in rows}
        if len(existing) == len(ids):
            return readings
        kept = []
        for r in readings:
            if r.device_id in existing:
                kept.append(r)
            else:
                out.dead.append(
                    DeadLetter(
                        readings_topic(r.device_id),
                        r.device_id,
                        "unknown_device",
                        "device was deleted",
                        truncate_payload(encode_reading(r)),
                    )
                )
        return kept

    def _insert(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        readings: list[Reading],
        out: BatchOutcome,
    ) -> list[Reading]:
        with conn.cursor().copy(
            "COPY _incoming (device_id, ts, energy_kwh, seq, power_w) FROM STDIN"
        ) as copy:
            for r in readings:
                copy.write_row((r.device_id, r.ts, r.energy_kwh, r.seq, r.power_w))
        keys = conn.execute(
            "INSERT INTO readings (device_id, ts, energy_kwh, seq, power_w)"
            " SELECT device_id, ts, energy_kwh, seq, power_w FROM _incoming"
            " ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts"
        ).fetchall()
        new_keys = {(k[0], k[1]) for k in keys}
        inserted = [r for r in readings if (r.device_id, r.ts) in new_keys]
        out.stored = len(inserted)
        if len(inserted) < len(readings):
            old = [r for r in readings if (r.device_id, r.ts) not in new_keys]
            stored = {
                (row[0], row[1]): float(row[2])  # type: ignore[arg-type]
                for row in conn.execute(
                    "SELECT device_id, ts, energy_kwh FROM readings WHERE (device_id, ts)"
                    " IN (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]))",
                    ([r.device_id for r in old], [r.ts for r in old]),
                )
            }
            for r in old:
                value = stored.get((r.device_id, r.ts))
                if value is None or same_value(value, r.energy_kwh):
                    out.duplicates += 1
                else:
                    out.dead.append(conflict_letter(readings_topic(r.device_id), r, value))
        return inserted

    def _mark_dirty(
        self, conn: psycopg.Connection[tuple[object, ...]], inserted: Sequence[Reading]
    ) -> None:
        firsts: dict[UUID, datetime] = {}
        for r in inserted:
            t0 = firsts.get(r.device_id)
            if t0 is None or r.ts < t0:
                firsts[r.device_id] = r.ts
        if not firsts:
            return
        ids = sorted(firsts)  # one lock order for every hub: no deadlocks between replicas
        conn.execute(
            "INSERT INTO rollup_dirty (device_id, from_ts)"
            " SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]) ORDER BY 1"
            " ON CONFLICT (device_id) DO UPDATE"
            " SET from_ts = least(rollup_dirty.from_ts, excluded.from_ts)",
            (pg_array(ids), pg_array(firsts[i].isoformat() for i in ids)),
        )

    def _touch_status(
        self, conn: psycopg.Connection[tuple[object, ...]], ids: list[UUID]
    ) -> list[UUID]:
        """A reading is a sign of life: last_seen now; an offline meter comes back online."""
        back = conn.execute(
            "UPDATE device_status SET state = 'online', since = now(), last_seen = now()"
            " WHERE device_id = ANY(%s::uuid[]) AND state <> 'online' RETURNING device_id",
            (pg_array(ids),),
        ).fetchall()
        if back:
            conn.execute(
                "INSERT INTO device_status_history (device_id, state, reason)"
                " SELECT unnest(%s::uuid[]), 'online', 'reading'",
                ([r[0] for r in back],),
            )
        conn.execute(
            "INSERT INTO device_status (device_id, state, since, last_seen)"
            " SELECT unnest(%s::uuid[]), 'online', now(), now()"
            " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (pg_array(ids),),
        )
        return [r[0] for r in back]  # type: ignore[misc]

    def set_status(
        self, device_id: UUID, state: str, reason: str, not_before: datetime | None = None
    ) -> bool:
        """Record a status from the meter's status topic; True if it changed. With
        ``not_before`` (a replayed status's own time) it changes only a state recorded
        before that time."""
        with self.conn.transaction():
            row = self.conn.execute(
                "INSERT INTO device_status AS s (device_id, state, since, last_seen)"
                " SELECT %s, %s, now(), CASE WHEN %s = 'online' THEN now() END"
                " WHERE EXISTS (SELECT 1 FROM devices WHERE id = %s)"
                " ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, since = now(),"
                "   last_seen = coalesce(excluded.last_seen, s.last_seen)"
                " WHERE s.state IS DISTINCT FROM excluded.state"
                "   AND (%s::timestamptz IS NULL OR s.since < %s::timestamptz)"
                " RETURNING device_id",
                (device_id, state, state, device_id, not_before, not_before),
            ).fetchone()
            if row is not None:
                self.conn.execute(
                    "INSERT INTO device_status_history (device_id, state, reason)"
                    " VALUES (%s, %s, %s)",
                    (device_id, state, reason),
                )
        return row is not None

    def mark_stale(self, stale_intervals: float) -> list[UUID]:
        """Meters silent for more than ``stale_intervals`` reading intervals go offline."""
        with self.conn.transaction():
            rows = self.conn.execute(
                "UPDATE device_status s SET state = 'offline', since = now()"
                " FROM devices d WHERE d.id = s.device_id AND s.state = 'online'"
                " AND s.last_seen < now() - make_interval(secs => d.interval_s * %s)"
                " RETURNING s.device_id",
                (stale_intervals,),
            ).fetchall()
            ids = [r[0] for r in rows]
            if ids:
                self.conn.execute(
                    "INSERT INTO device_status_history (device_id, state, reason)"
                    " SELECT unnest(%s::uuid[]), 'offline', 'stale'",
                    (ids,),
                )
        return ids  # type: ignore[return-value]
