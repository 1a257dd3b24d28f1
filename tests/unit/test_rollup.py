"""Incremental hourly rollups (hub.rollup): stored hours, rewritten one arrival at a time the way
the rollup store does it, always equal a full recompute of everything that has arrived."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hub.energy import MeterReading, compute_hourly, hour_floor
from hub.rollup import NeedLongerHistory, Rewrite, cumulative_rewrite, interval_rewrite
from tests.unit.test_energy import RATINGS, T0, meter_series

DEVICE = uuid.uuid4()
Stored = dict[datetime, tuple[float, str, int]]


def loaded_suffix(known: list[MeterReading], t0: datetime) -> tuple[list[MeterReading], bool]:
    """What hub.rollup_store.LOAD_SUFFIXES loads: from two readings before the hour of the
    reading that precedes ``t0``; and whether that is the whole series."""
    before = [r for r in known if r.ts < t0]
    if not before:
        return known, True
    prev_hour = hour_floor(before[-1].ts)
    older = [r for r in known if r.ts < prev_hour]
    if len(older) < 2:
        return known, True
    start = older[-2].ts
    return [r for r in known if r.ts >= start], False


def roll(
    stored: Stored,
    known: list[MeterReading],
    t0: datetime,
    rated: float | None,
    marker: list[datetime],
) -> None:
    """One pass of hub.rollup_store for one device; ``marker`` is its rollup_quarantine row."""
    suffix, whole = loaded_suffix(known, t0)
    through = max(marker, default=None)
    try:
        rw: Rewrite = cumulative_rewrite(
            DEVICE,
            suffix,
            t0,
            rated_power_w=rated,
            starts_at_first_reading=whole,
            quarantined_through=through,
        )
    except NeedLongerHistory:
        rw = cumulative_rewrite(
            DEVICE,
            known,
            t0,
            rated_power_w=rated,
            starts_at_first_reading=True,
            quarantined_through=through,
        )
    for hour in [h for h in stored if h >= rw.from_hour]:
        del stored[hour]
    stored.update({r.hour: (r.energy_kwh, r.quality, r.readings) for r in rw.rows})
    if rw.quarantined_through is not None:
        marker.append(rw.quarantined_through)


def full(known: list[MeterReading], rated: float | None) -> Stored:
    result = compute_hourly(known, rated_power_w=rated)
    return {h: (v.energy_kwh, v.quality.value, v.readings) for h, v in result.hours.items()}


def same(a: Stored, b: Stored) -> bool:
    return a.keys() == b.keys() and all(
        math.isclose(a[h][0], b[h][0], rel_tol=1e-9, abs_tol=1e-9) and a[h][1:] == b[h][1:]
        for h in a
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_quarantined_reading_before_a_gap_does_not_lose_the_gaps_first_hour() -> None:
    # 0 kWh at 00:00, 0.1 at 00:59, an implausible 100 at 01:30 (quarantined at 1 kW rated),
    # then 0.2 at 02:11: the 0.1 kWh from 00:59 to 02:11 spans hours 0, 1 and 2.
    readings = [
        MeterReading(at(0), 0.0),
        MeterReading(at(59), 0.1),
        MeterReading(at(90), 100.0),
        MeterReading(at(131), 0.2),
    ]
    stored: Stored = {}
    marker: list[datetime] = []
    for k, reading in enumerate(readings):
        roll(stored, readings[: k + 1], reading.ts, 1000.0, marker)
    assert same(stored, full(readings, 1000.0))
    assert math.isclose(sum(v[0] for v in stored.values()), 0.2)


@given(readings=meter_series(), rated=RATINGS, data=st.data())
def test_rolling_up_arrival_by_arrival_equals_a_full_recompute(
    readings: list[MeterReading], rated: float | None, data: st.DataObject
) -> None:
    in_order = data.draw(st.booleans())
    order = (
        list(range(len(readings))) if in_order else data.draw(st.permutations(range(len(readings))))
    )
    stored: Stored = {}
    marker: list[datetime] = []
    arrived: list[MeterReading] = []
    for i in order:
        arrived = sorted([*arrived, readings[i]], key=lambda r: r.ts)
        roll(stored, arrived, readings[i].ts, rated, marker)
    assert same(stored, full(readings, rated)), [(r.ts.isoformat(), r.energy_kwh) for r in readings]


def test_an_interval_reading_implying_more_than_the_power_limit_is_quarantined() -> None:
    # Ten-minute intervals under a 5 kW limit: 0.5 kWh is 3 kW; 5e8 kWh would be 3e12 W.
    readings = [MeterReading(at(10), 0.5), MeterReading(at(20), 5e8), MeterReading(at(30), 0.25)]
    rw = interval_rewrite(DEVICE, readings, at(10), power_limit_w=5000.0, interval_s=600)
    assert [(row.hour, row.energy_kwh, row.readings) for row in rw.rows] == [(T0, 0.75, 2)]
    assert [(i.reading, i.implied_power_w) for i in rw.implausible] == [(readings[1], 3e12)]
    assert interval_rewrite(DEVICE, readings, at(10)).rows[0].energy_kwh == 5e8 + 0.75
