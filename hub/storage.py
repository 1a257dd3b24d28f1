"""PostgreSQL side of the hub: one connection, two kinds of transaction.

Ingest (``commit_batch``): a batch is committed whole or not at all — readings (COPY,
idempotent on (device_id, ts)), one rollup_log row naming the devices that got new readings,
dead letters and device last-seen times. Only after the commit are its MQTT messages acknowledged,
so a crash at any instant loses nothing (the broker redelivers) and counts nothing twice (the
key absorbs the redelivery).

Rollup (``hub.rollup_store.rollup_pending``): takes the logged work, recomputes the hours of
the devices it names from the readings and deletes the log rows, in one transaction. Many
readings of a device between two rollups cost one recompute: rollup work grows with the number
of active devices, not with the reading rate. Ingest only appends to the log, so it never waits
for a rollup.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import psycopg
from psycopg.rows import RowFactory, tuple_row

from contract.payloads import Reading
from contract.topics import readings_topic
from hub.batch import DeadLetter, PreparedBatch, conflict_letter, same_value
from hub.metrics import UNEXPORTED, Mark, Stages
from hub.registry import DeviceInfo

TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS _incoming (
    device_id uuid, ts timestamptz, energy_kwh float8, seq int8, power_w float8
) ON COMMIT DELETE ROWS;
"""


INCOMING_TYPES = ["uuid", "timestamptz", "float8", "int8", "float8"]

# Readings in (in key order: concurrent writers meeting on a redelivered key wait for each other
# in one order, never in a cycle), and in the same statement one rollup_log row: each device
# that got new readings with its earliest new one (PostgreSQL runs a data-modifying WITH whether
# or not it is read).
INSERT_READINGS = """
WITH inserted AS (
    INSERT INTO readings (device_id, ts, energy_kwh, seq, power_w)
    SELECT device_id, ts, energy_kwh, seq, power_w FROM _incoming ORDER BY device_id, ts
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts
), logged AS (
    INSERT INTO rollup_log (device_ids, from_ts)
    SELECT array_agg(device_id), array_agg(first_ts)
    FROM (SELECT device_id, min(ts) AS first_ts FROM inserted GROUP BY device_id) AS firsts
    HAVING count(*) > 0
)
SELECT count(*) FROM inserted
"""


def pg_array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal (UUIDs, ISO timestamps, numbers, text, booleans, None as
    NULL), cast in the statement (``%s::uuid[]``): far cheaper to send than a list
    parameter, which psycopg adapts element by element."""
    return "{" + ",".join([_quoted(v) for v in values]) + "}"


def write_dead_letters(conn: psycopg.Connection[Any], letters: Sequence[DeadLetter]) -> None:
    """Dead letters into their table, in the caller's transaction (ingest's and the rollup's)."""
    if not letters:
        return
    with conn.cursor().copy(
        "COPY dead_letters (topic, device_id, reason, detail, payload) FROM STDIN"
    ) as copy:
        for d in letters:
            copy.write_row((d.topic, d.device_id, d.reason, d.detail, d.payload))


@functools.lru_cache(maxsize=100_000)
def _uuid_text(value: UUID) -> str:
    return f'"{value}"'  # formatting a UUID is slow; a fleet's ids repeat all day


def _quoted(value: object) -> str:
    # The common cases first: ids, then timestamps (as ISO text) and numbers.
    if isinstance(value, UUID):
        return _uuid_text(value)
    if isinstance(value, str):
        if '"' in value or "\\" in value:  # the array syntax's two special characters
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{value}"'
    if value is None:
        return "NULL"  # unquoted: "NULL" in quotes is the text NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    return f'"{value}"'


DEVICE_COLUMNS = "id, owner_id, max_hourly_kwh, meter_kind, rated_power_w, interval_s"

# Typed row factories. A typed ``tuple_row`` is psycopg's own tuple maker, so a row costs what
# an untyped one does: used where rows come per reading. Only the column types are declared.
ConflictRow = tuple[UUID, datetime, float]  # device_id, ts, stored energy_kwh
conflict_row: RowFactory[ConflictRow] = tuple_row
IdRow = tuple[UUID]
id_row: RowFactory[IdRow] = tuple_row
CountRow = tuple[int]
count_row: RowFactory[CountRow] = tuple_row


def _device(values: Sequence[Any]) -> DeviceInfo:
    device_id, owner_id, max_hourly_kwh, meter_kind, rated_power_w, interval_s = values
    return DeviceInfo(
        device_id=device_id,
        owner_id=owner_id,
        max_hourly_kwh=float(max_hourly_kwh),
        meter_kind="interval" if meter_kind == "interval" else "cumulative",
        rated_power_w=None if rated_power_w is None else float(rated_power_w),
        interval_s=int(interval_s),
    )


def device_row(_cursor: object) -> Callable[[Sequence[Any]], DeviceInfo]:
    """A row factory (``psycopg.rows.RowFactory[DeviceInfo]``) for ``DEVICE_COLUMNS``."""
    return _device


class TouchThrottle:
    """When each device's ``last_seen`` is next due, shared by a hub's writers.

    ``period(device_id)``: seconds within which a device's ``last_seen`` need not be written
    again. Writing it with every batch is a row update per device per batch: as many writes as
    the readings themselves for a large fleet.
    """

    def __init__(self, period: Callable[[UUID], float]) -> None:
        self._period = period
        self._due: dict[UUID, float] = {}

    def due(self, ids: Iterable[UUID]) -> list[UUID]:
        """The devices whose last_seen is due, in one order for every writer (no deadlocks)."""
        now, due = time.monotonic(), self._due
        return sorted(i for i in ids if due.get(i, 0.0) <= now)

    def done(self, ids: Iterable[UUID]) -> None:
        now, period, due = time.monotonic(), self._period, self._due
        for device_id in ids:
            due[device_id] = now + period(device_id)

    def forget(self, device_id: UUID) -> None:
        self._due.pop(device_id, None)


@dataclass(slots=True)
class BatchOutcome:
    stored: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    back_online: list[UUID] = field(default_factory=list)  # offline meters that sent a reading


class Storage(Protocol):
    """What a ``BatchWriter`` needs of the database: exactly the calls it makes.

    ``PgStorage`` is the real one; ``hub.storage_fake.FakeStorage`` keeps the same semantics in
    memory and fails on cue, for the writer's unit tests. Any call may raise ``psycopg.Error``:
    ``OperationalError`` when the database is unreachable, another for what it refuses."""

    def load_devices(self, ids: Iterable[UUID] | None = None) -> list[DeviceInfo]:
        """Every device, or those of ``ids`` that exist."""
        ...

    def commit_batch(self, batch: PreparedBatch) -> BatchOutcome:
        """Store a prepared batch whole or not at all (see ``PgStorage.commit_batch``)."""
        ...

    def set_status(
        self, device_id: UUID, state: str, reason: str, not_before: datetime | None = None
    ) -> bool:
        """Record a meter's status; True if it changed."""
        ...

    def mark_stale(self, stale_intervals: float) -> list[UUID]:
        """Put the meters silent for too long offline; returns them."""
        ...

    def reset(self) -> None:
        """After an error: drop the connection; the next call reconnects."""
        ...

    def close(self) -> None: ...


class PgStorage:
    def __init__(
        self, dsn: str, *, touch: TouchThrottle | None = None, stages: Stages = UNEXPORTED
    ) -> None:
        """``stages``: where ``commit_batch`` books its copy, insert and commit time."""
        self._dsn = dsn
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._touch = touch if touch is not None else TouchThrottle(lambda _device_id: 0.0)
        self._stages = stages

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
        conn = self.conn
        with conn.transaction():
            cur = conn.cursor(row_factory=device_row)
            if ids is None:
                return cur.execute(f"SELECT {DEVICE_COLUMNS} FROM devices").fetchall()
            return cur.execute(
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ANY(%s)", (list(ids),)
            ).fetchall()

    def commit_batch(self, batch: PreparedBatch) -> BatchOutcome:
        """Store a prepared batch in one transaction. A reading of a device deleted since the
        registry saw it fails the transaction with ``ForeignKeyViolation``: the caller
        refreshes its registry (the reading is then dead-lettered as unknown) and retries."""
        out = BatchOutcome(duplicates=batch.duplicates, dead=list(batch.dead))
        conn = self.conn
        touched: list[UUID] = []
        stages = self._stages
        mark = stages.mark()  # BEGIN's round trip is booked with the COPY
        with conn.transaction():
            if batch.readings:
                mark = self._insert(conn, batch.readings, out, mark)
                touched = self._touch.due({r.device_id for r in batch.readings})
                if touched:
                    out.back_online = self._touch_status(conn, touched)
            write_dead_letters(conn, out.dead)
            mark = stages.lap("insert", mark)
        stages.lap("commit", mark)  # leaving the block committed
        if touched:  # committed: their last_seen is now
            self._touch.done(touched)
        return out

    def _insert(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        readings: list[Reading],
        out: BatchOutcome,
        mark: Mark,
    ) -> Mark:
        """Returns the mark after the COPY (what follows is booked as ``insert``)."""
        # Binary: psycopg packs each row in C, a quarter of the text format's cost here.
        with conn.cursor().copy(
            "COPY _incoming (device_id, ts, energy_kwh, seq, power_w) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(INCOMING_TYPES)
            for r in readings:
                copy.write_row((r.device_id, r.ts, r.energy_kwh, r.seq, r.power_w))
        mark = self._stages.lap("copy", mark)
        row = conn.cursor(row_factory=count_row).execute(INSERT_READINGS).fetchone()
        out.stored = row[0] if row else 0
        if out.stored == len(readings):
            return mark
        # Some were stored before: the same value is a duplicate (a redelivery), another value a
        # conflict. (A reading stored just now differs from no incoming value.)
        by_key = {(r.device_id, r.ts): r for r in readings}
        conflicts = 0
        for device_id, ts, stored in conn.cursor(row_factory=conflict_row).execute(
            "SELECT i.device_id, i.ts, r.energy_kwh FROM _incoming i"
            " JOIN readings r ON r.device_id = i.device_id AND r.ts = i.ts"
            " WHERE r.energy_kwh <> i.energy_kwh"
        ):
            reading = by_key[(device_id, ts)]
            if not same_value(stored, reading.energy_kwh):
                out.dead.append(conflict_letter(readings_topic(reading.device_id), reading, stored))
                conflicts += 1
        out.duplicates += len(readings) - out.stored - conflicts
        return mark

    def _touch_status(
        self, conn: psycopg.Connection[tuple[object, ...]], ids: list[UUID]
    ) -> list[UUID]:
        """A reading is a sign of life: last_seen now; an offline meter comes back online."""
        back = [
            r[0]
            for r in conn.cursor(row_factory=id_row).execute(
                "UPDATE device_status SET state = 'online', since = now(), last_seen = now()"
                " WHERE device_id = ANY(%s::uuid[]) AND state <> 'online' RETURNING device_id",
                (pg_array(ids),),
            )
        ]
        if back:
            conn.execute(
                "INSERT INTO device_status_history (device_id, state, reason)"
                " SELECT unnest(%s::uuid[]), 'online', 'reading'",
                (back,),
            )
        conn.execute(
            "INSERT INTO device_status (device_id, state, since, last_seen)"
            " SELECT unnest(%s::uuid[]), 'online', now(), now()"
            " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (pg_array(ids),),
        )
        return back

    def set_status(
        self, device_id: UUID, state: str, reason: str, not_before: datetime | None = None
    ) -> bool:
        """Record a status from the meter's status topic; True if it changed. With
        ``not_before`` (a replayed status's own time) it changes only a state recorded
        before that time."""
        self._touch.forget(device_id)  # a reading after this must update the row
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
        conn = self.conn
        with conn.transaction():
            ids = [
                r[0]
                for r in conn.cursor(row_factory=id_row).execute(
                    "UPDATE device_status s SET state = 'offline', since = now()"
                    " FROM devices d WHERE d.id = s.device_id AND s.state = 'online'"
                    " AND s.last_seen < now() - make_interval(secs => d.interval_s * %s)"
                    " RETURNING s.device_id",
                    (stale_intervals,),
                )
            ]
            for device_id in ids:
                self._touch.forget(device_id)
            if ids:
                conn.execute(
                    "INSERT INTO device_status_history (device_id, state, reason)"
                    " SELECT unnest(%s::uuid[]), 'offline', 'stale'",
                    (ids,),
                )
        return ids
