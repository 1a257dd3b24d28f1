"""The rollup step: recompute the hours of marked devices, in one transaction.

Marks (``rollup_dirty``) are taken with SKIP LOCKED, so hub replicas split the work and never
wait for each other; a mark being refreshed by an ingest transaction right now is skipped and
taken next time. While we hold a mark, an ingest that marks the device again waits for our
commit and then re-inserts the mark, so readings committed after our snapshot are never lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg

from hub.batch import DeadLetter
from hub.energy import MeterReading
from hub.protocol import Reading, encode_reading, readings_topic, truncate_payload
from hub.registry import DeviceInfo
from hub.rollup import NeedLongerHistory, Rewrite, cumulative_rewrite, interval_rewrite
from hub.storage import pg_array

Conn = psycopg.Connection[tuple[object, ...]]

TAKE_MARKS = """
SELECT device_id, from_ts FROM rollup_dirty
ORDER BY marked_at LIMIT %s FOR UPDATE SKIP LOCKED
"""

# For each device: the readings from two readings before the hour of the reading that
# precedes the first new one — the anchor and its predecessor in the usual case; a run of
# drops that needs more raises NeedLongerHistory and reloads the whole series.
LOAD_SUFFIXES = """
SELECT f.device_id, r.ts, r.energy_kwh, r.power_w, (b.s IS NULL) AS from_start, qr.last_ts
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


AfterRollup = Callable[[Conn, RollupOutcome], None]


def rollup_pending(
    conn: Conn,
    devices: Callable[[UUID], DeviceInfo | None],
    *,
    limit: int = 5000,
    after_rollup: AfterRollup | None = None,
) -> RollupOutcome:
    out = RollupOutcome()
    with conn.transaction():
        conn.execute(TEMP_TABLES)
        marks = conn.execute(TAKE_MARKS, (limit,)).fetchall()
        if not marks:
            return out
        firsts: dict[UUID, datetime] = {m[0]: m[1] for m in marks}  # type: ignore[misc]
        ids = list(firsts)
        series: dict[UUID, list[MeterReading]] = defaultdict(list)
        from_start: dict[UUID, bool] = {}
        quarantined: dict[UUID, datetime | None] = {}
        for device_id, ts, energy, power, start, last_quarantined in conn.execute(
            LOAD_SUFFIXES, (pg_array(ids), pg_array(firsts[i].isoformat() for i in ids))
        ):
            series[device_id].append(MeterReading(ts, energy))  # type: ignore[index, arg-type]
            from_start[device_id] = bool(start)  # type: ignore[index]
            quarantined[device_id] = last_quarantined  # type: ignore[index, assignment]
            out.latest[device_id] = Reading(device_id, ts, energy, None, power)  # type: ignore[index, arg-type]
        for device_id, t0 in firsts.items():
            rw = _rewrite(
                conn,
                device_id,
                t0,
                series[device_id],
                from_start.get(device_id, True),
                devices(device_id),
                quarantined.get(device_id),
            )
            if rw is not None:
                out.rewrites.append(rw)
                out.dead += _implausible_letters(rw, devices(device_id))
        _write(conn, out.rewrites)
        conn.execute("DELETE FROM rollup_dirty WHERE device_id = ANY(%s::uuid[])", (pg_array(ids),))
        if out.dead:
            with conn.cursor().copy(
                "COPY dead_letters (topic, device_id, reason, detail, payload) FROM STDIN"
            ) as copy:
                for d in out.dead:
                    copy.write_row((d.topic, d.device_id, d.reason, d.detail, d.payload))
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
) -> Rewrite | None:
    if not suffix or suffix[-1].ts < t0:
        return None  # the readings are gone (device deleted meanwhile): nothing to recompute
    if info is not None and info.meter_kind == "interval":
        return interval_rewrite(device_id, suffix, t0)
    rated = info.rated_power_w if info is not None else None
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
            MeterReading(ts, energy)  # type: ignore[arg-type]
            for ts, energy in conn.execute(
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


def _implausible_letters(rw: Rewrite, info: DeviceInfo | None) -> list[DeadLetter]:
    rated = info.rated_power_w if info is not None else None
    return [
        DeadLetter(
            readings_topic(rw.device_id),
            rw.device_id,
            "implausible",
            f"implies {bad.implied_power_w:.0f} W > rated {rated} W",
            truncate_payload(
                encode_reading(Reading(rw.device_id, bad.reading.ts, bad.reading.energy_kwh))
            ),
        )
        for bad in rw.implausible
    ]


def _write(conn: Conn, rewrites: list[Rewrite]) -> None:
    with conn.cursor().copy("COPY _rewrite (device_id, from_hour) FROM STDIN") as copy:
        for rw in rewrites:
            copy.write_row((rw.device_id, rw.from_hour))
    with conn.cursor().copy(
        "COPY _hourly (device_id, hour, energy_kwh, quality, readings) FROM STDIN"
    ) as copy:
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
