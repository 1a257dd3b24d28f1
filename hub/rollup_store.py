"""The rollup step: recompute the hours of the devices in the rollup log, in one transaction.

Ingest appends a ``rollup_log`` row per batch and never waits for us. A pass deletes the log
rows committed so far, merges them into one earliest time per device, recomputes those devices'
hours and writes them, all in one transaction: readings committed after the pass took the log
have log rows of their own, which the next pass takes. Beyond ``limit`` devices, the rest of
the work goes back into the log as one row, in the same transaction.

One pass runs at a time across hub replicas (a transaction-level advisory lock; a replica that
finds it taken skips its pass). Two passes recomputing one device at once could commit in the
wrong order, leaving the hours of the older snapshot.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import RowFactory, tuple_row

from contract.payloads import Reading
from contract.readings import MAX_POWER_W, encode_reading
from contract.reasons import truncate_payload
from contract.topics import readings_topic
from hub.batch import DeadLetter
from hub.energy import MeterReading
from hub.registry import DeviceInfo
from hub.rollup import NeedLongerHistory, Rewrite, cumulative_rewrite, interval_rewrite
from hub.storage import pg_array, write_dead_letters

Conn = psycopg.Connection[tuple[object, ...]]

# Typed tuple rows (psycopg's own tuple maker: no cost per row; the suffix rows come one per
# reading). Only the column types are declared.
LoggedRow = tuple[UUID, datetime, bool]  # TAKE_LOG: device, earliest new reading, more left
logged_row: RowFactory[LoggedRow] = tuple_row
# LOAD_SUFFIXES: device, ts, energy_kwh, power_w, from the first reading, quarantined through,
# seq
SuffixRow = tuple[UUID, datetime, float, float | None, bool, datetime | None, int | None]
suffix_row: RowFactory[SuffixRow] = tuple_row
ReadingRow = tuple[datetime, float]
reading_row: RowFactory[ReadingRow] = tuple_row
KeyRow = tuple[UUID, datetime]
key_row: RowFactory[KeyRow] = tuple_row

# Any constant will do ("emsr" in ASCII); it shows as the advisory lock's objid in pg_locks.
PASS_LOCK = 0x656D7372

# Each device once, with its earliest logged time, the longest-waiting first (by log row,
# then by place in the row, so the rest written back keeps its order): the first
# %(limit)s are returned, the rest go back into the log as one row (in that order), all in one
# statement. (Returning the whole backlog and writing the rest back from Python cost up to
# 50 ms a pass under load, growing with the backlog, not with the pass.)
TAKE_LOG = """
WITH taken AS (DELETE FROM rollup_log RETURNING id, device_ids, from_ts),
merged AS (
    SELECT u.device_id, min(u.from_ts) AS from_ts,
        row_number() OVER (
            ORDER BY min(taken.id), (array_agg(u.pos ORDER BY taken.id, u.pos))[1], u.device_id
        ) AS n
    FROM taken, unnest(taken.device_ids, taken.from_ts) WITH ORDINALITY
        AS u(device_id, from_ts, pos)
    GROUP BY u.device_id
), rest AS (
    INSERT INTO rollup_log (device_ids, from_ts)
    SELECT array_agg(device_id ORDER BY n), array_agg(from_ts ORDER BY n)
    FROM merged WHERE n > %(limit)s
    HAVING count(*) > 0
    RETURNING id
)
SELECT device_id, from_ts, EXISTS (SELECT 1 FROM rest) FROM merged
WHERE n <= %(limit)s ORDER BY n
"""

# For each device: the readings from two readings before the hour of the reading that
# precedes the first new one — the anchor and its predecessor in the usual case; a run of
# drops that needs more raises NeedLongerHistory and reloads the whole series.
LOAD_SUFFIXES = """
SELECT f.device_id, r.ts, r.energy_kwh, r.power_w, (b.s IS NULL) AS from_start, qr.last_ts,
       r.seq
FROM unnest(%s::uuid[], %s::timestamptz[]) AS f(device_id, t0)
LEFT JOIN rollup_quarantine qr ON qr.device_id = f.device_id
LEFT JOIN LATERAL (
    SELECT date_trunc('hour', max(p.ts)) AS h FROM readings p
    WHERE p.device_id = f.device_id AND p.ts < f.t0
) AS prev ON true
LEFT JOIN LATERAL (
    SELECT q.ts AS s FROM readings q
    WHERE q.device_id = f.device_id AND q.ts < prev.h
    ORDER BY q.ts DESC OFFSET 1 LIMIT 1
) AS b ON true
JOIN readings r ON r.device_id = f.device_id AND r.ts >= coalesce(b.s, '-infinity')
ORDER BY f.device_id, r.ts
"""

TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS _rewrite (device_id uuid, from_hour timestamptz)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _hourly (
    device_id uuid, hour timestamptz, energy_kwh float8, quality text, readings int4
) ON COMMIT DELETE ROWS;
"""


@dataclass(slots=True)
class RollupOutcome:
    rewrites: list[Rewrite] = field(default_factory=list)
    latest: dict[UUID, Reading] = field(default_factory=dict)  # newest reading per device
    dead: list[DeadLetter] = field(default_factory=list)
    more: bool = False  # work beyond the pass's limit was left in the log
    # time.monotonic() before the pass read anything: a reading whose commit was seen before
    # it is in the pass's snapshot (hub.running uses this to tell a stale re-seed).
    started: float = field(default_factory=time.monotonic)


AfterRollup = Callable[[Conn, RollupOutcome], None]


def rollup_pending(
    conn: Conn,
    devices: Callable[[UUID], DeviceInfo | None],
    *,
    limit: int = 5000,
    after_rollup: AfterRollup | None = None,
    between_devices: Callable[[], None] | None = None,
    max_power_w: float = MAX_POWER_W,
) -> RollupOutcome:
    """One pass (see the module doc). ``between_devices`` is called before each device's
    recompute: the hub uses it to give way to ingest while ingest is behind. ``max_power_w``:
    the ceiling on the power a cumulative meter's increase may imply, for every device (its
    own rated power, when lower, applies instead)."""
    out = RollupOutcome()
    with conn.transaction():
        locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (PASS_LOCK,)).fetchone()
        if not (locked and locked[0]):
            return out  # another hub's pass is running: the work is left to it
        conn.execute(TEMP_TABLES)
        logged = conn.cursor(row_factory=logged_row).execute(TAKE_LOG, {"limit": limit}).fetchall()
        if not logged:
            return out
        out.more = logged[0][2]
        firsts = {m[0]: m[1] for m in logged}
        ids = list(firsts)
        series: dict[UUID, list[MeterReading]] = defaultdict(list)
        from_start: dict[UUID, bool] = {}
        quarantined: dict[UUID, datetime | None] = {}
        for device_id, ts, energy, power, start, last_quarantined, seq in conn.cursor(
            row_factory=suffix_row
        ).execute(LOAD_SUFFIXES, (pg_array(ids), pg_array(firsts[i].isoformat() for i in ids))):
            series[device_id].append(MeterReading(ts, energy))
            from_start[device_id] = start
            quarantined[device_id] = last_quarantined
            out.latest[device_id] = Reading(device_id, ts, energy, seq, power)
        for device_id, t0 in firsts.items():
            if between_devices is not None:
                between_devices()
            rw = _rewrite(
                conn,
                device_id,
                t0,
                series[device_id],
                from_start.get(device_id, True),
                devices(device_id),
                quarantined.get(device_id),
                max_power_w,
            )
            if rw is not None:
                out.rewrites.append(rw)
        _write(conn, out.rewrites)
        out.dead += _implausible_letters(conn, out.rewrites, devices, max_power_w)
        write_dead_letters(conn, out.dead)
        if after_rollup is not None:
            after_rollup(conn, out)
    return out


def _rewrite(
    conn: Conn,
    device_id: UUID,
    t0: datetime,
    suffix: list[MeterReading],
    starts_at_first: bool,
    info: DeviceInfo | None,
    quarantined: datetime | None,
    max_power_w: float,
) -> Rewrite | None:
    if not suffix or suffix[-1].ts < t0:
        return None  # the readings are gone (device deleted meanwhile): nothing to recompute
    rated, _why = power_limit(info, max_power_w)
    if info is not None and info.meter_kind == "interval":
        return interval_rewrite(
            device_id, suffix, t0, power_limit_w=rated, interval_s=info.interval_s
        )
    try:
        return cumulative_rewrite(
            device_id,
            suffix,
            t0,
            rated_power_w=rated,
            starts_at_first_reading=starts_at_first,
            quarantined_through=quarantined,
        )
    except NeedLongerHistory:
        whole = [
            MeterReading(ts, energy)
            for ts, energy in conn.cursor(row_factory=reading_row).execute(
                "SELECT ts, energy_kwh FROM readings WHERE device_id = %s ORDER BY ts",
                (device_id,),
            )
        ]
        return cumulative_rewrite(
            device_id,
            whole,
            t0,
            rated_power_w=rated,
            starts_at_first_reading=True,
            quarantined_through=quarantined,
        )


# The quarantined readings not recorded before, recorded now: a recompute that reaches back over
# a reading quarantined by an earlier pass finds it implausible again (migration 0010).
RECORD_QUARANTINED = """
INSERT INTO quarantined_readings (device_id, ts)
SELECT * FROM unnest(%s::uuid[], %s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING device_id, ts
"""


def power_limit(info: DeviceInfo | None, max_power_w: float) -> tuple[float, str]:
    """The most power a meter's increase (an interval meter's reading) may imply, and what
    sets it. Without a rated power the hub's ceiling still applies: a register jump of 1e9 kWh
    in ten minutes is no consumption, and counted it would swamp every total. An interval
    meter gets only the ceiling: its implied power rests on its ``interval_s`` setting, and a
    wrong one would quarantine real readings against a rating, never against a bound orders
    of magnitude above any meter."""
    limit = power_limit_w(info, max_power_w)
    if info is not None and info.meter_kind == "cumulative" and info.rated_power_w == limit:
        return limit, f"rated {limit:g} W"
    return max_power_w, f"the {max_power_w:g} W ceiling for any meter (HUB_MAX_POWER_W)"


def power_limit_w(info: DeviceInfo | None, max_power_w: float) -> float:
    """``power_limit``'s figure alone (no text to build: the running totals ask per reading)."""
    rated = info.rated_power_w if info is not None and info.meter_kind == "cumulative" else None
    return rated if rated is not None and rated <= max_power_w else max_power_w


def _implausible_letters(
    conn: Conn,
    rewrites: list[Rewrite],
    devices: Callable[[UUID], DeviceInfo | None],
    max_power_w: float,
) -> list[DeadLetter]:
    """One dead letter per quarantined reading, the first time a pass quarantines it."""
    found = [(rw.device_id, bad) for rw in rewrites for bad in rw.implausible]
    if not found:
        return []
    new = set(
        conn.cursor(row_factory=key_row)
        .execute(
            RECORD_QUARANTINED,
            (
                pg_array(device_id for device_id, _ in found),
                pg_array(bad.reading.ts.isoformat() for _, bad in found),
            ),
        )
        .fetchall()
    )
    letters = []
    for device_id, bad in found:
        if (device_id, bad.reading.ts) not in new:
            continue
        _limit, why = power_limit(devices(device_id), max_power_w)
        letters.append(
            DeadLetter(
                readings_topic(device_id),
                device_id,
                "implausible",
                f"implies {bad.implied_power_w:.0f} W > {why}",
                truncate_payload(
                    encode_reading(Reading(device_id, bad.reading.ts, bad.reading.energy_kwh))
                ),
            )
        )
    return letters


def _write(conn: Conn, rewrites: list[Rewrite]) -> None:
    with conn.cursor().copy(
        "COPY _rewrite (device_id, from_hour) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "timestamptz"])
        for rw in rewrites:
            copy.write_row((rw.device_id, rw.from_hour))
    with conn.cursor().copy(
        "COPY _hourly (device_id, hour, energy_kwh, quality, readings) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "timestamptz", "float8", "text", "int4"])
        for rw in rewrites:
            for row in rw.rows:
                copy.write_row((rw.device_id, row.hour, row.energy_kwh, row.quality, row.readings))
    conn.execute(
        "DELETE FROM hourly_energy h USING _rewrite w"
        " WHERE h.device_id = w.device_id AND h.hour >= w.from_hour"
    )
    conn.execute(
        "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
        " SELECT device_id, hour, energy_kwh, quality, readings FROM _hourly"
    )
    marked = [(rw.device_id, rw.quarantined_through) for rw in rewrites if rw.quarantined_through]
    if marked:
        ids, times = zip(*marked, strict=True)
        conn.execute(
            "INSERT INTO rollup_quarantine AS q (device_id, last_ts)"
            " SELECT * FROM unnest(%s::uuid[], %s::timestamptz[])"
            " ON CONFLICT (device_id) DO UPDATE"
            " SET last_ts = greatest(q.last_ts, excluded.last_ts)",
            (pg_array(ids), pg_array(t.isoformat() for t in times)),
        )
