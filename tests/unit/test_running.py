"""Running totals (hub.running) against the energy maths: whatever the delivery, a total that is
published is the hour the rollup computes from what has committed so far, and after the rollup
the last published totals equal the stored hours."""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from contract.payloads import Reading
from contract.readings import MAX_POWER_W
from hub.energy import MeterReading, compute_hourly, hour_floor
from hub.registry import DeviceInfo, MeterKind
from hub.rollup import cumulative_rewrite, interval_rewrite
from hub.rollup_store import RollupOutcome
from hub.running import LiveTotal, RunningTotals
from tests.unit.test_energy import RATINGS, T0, meter_series

DEVICE = uuid.uuid4()
PROPERTY = settings(max_examples=300, deadline=None)
Hours = dict[datetime, tuple[float, str]]


def device(
    kind: MeterKind = "cumulative", rated: float | None = None, interval_s: int = 600
) -> DeviceInfo:
    return DeviceInfo(DEVICE, None, 1000.0, kind, rated, interval_s)


def with_seq(readings: list[MeterReading]) -> list[Reading]:
    """As firmware sends them: a seq counting up by one per reading."""
    return [Reading(DEVICE, r.ts, r.energy_kwh, seq) for seq, r in enumerate(readings)]


def rolled_up(info: DeviceInfo, committed: dict[datetime, Reading]) -> tuple[RollupOutcome, Hours]:
    """A rollup pass over everything committed (hub.rollup, as hub.rollup_store runs it): the
    outcome the running totals re-seed from, and the hours it stores."""
    started = time.monotonic()
    series = [committed[ts] for ts in sorted(committed)]
    meter = [MeterReading(r.ts, r.energy_kwh) for r in series]
    ceiling = info.rated_power_w if info.rated_power_w is not None else MAX_POWER_W
    if info.meter_kind == "interval":
        rw = interval_rewrite(
            DEVICE, meter, meter[0].ts, power_limit_w=MAX_POWER_W, interval_s=info.interval_s
        )
    else:
        rw = cumulative_rewrite(
            DEVICE, meter, meter[0].ts, rated_power_w=ceiling, starts_at_first_reading=True
        )
    outcome = RollupOutcome(rewrites=[rw], latest={DEVICE: series[-1]}, started=started)
    return outcome, {row.hour: (row.energy_kwh, row.quality) for row in rw.rows}


def hours_of(info: DeviceInfo, committed: dict[datetime, Reading]) -> Hours:
    return rolled_up(info, committed)[1] if committed else {}


def deliver(
    info: DeviceInfo, batches: list[list[Reading]], rollup_after: list[bool]
) -> tuple[list[LiveTotal], Hours, RunningTotals]:
    """Commit ``batches`` in order through the running totals, with a rollup pass after the
    batches ``rollup_after`` marks and one at the end. Every published total that claims to
    be clean is checked against the hours of what had committed by then."""
    running = RunningTotals({DEVICE: info}.get)
    committed: dict[datetime, Reading] = {}
    published: list[LiveTotal] = []
    for batch, roll in zip(batches, rollup_after, strict=True):
        for r in batch:
            committed.setdefault(r.ts, r)
        totals = running.committed(batch)
        published += totals
        now = hours_of(info, committed)
        for total in totals:
            if total.clean:
                assert total.hour_kwh is not None
                energy, quality = now[total.hour]
                assert math.isclose(total.hour_kwh, energy, rel_tol=1e-12, abs_tol=1e-9)
                assert total.quality == quality
        if roll:
            published += running.reseed(rolled_up(info, committed)[0])
    outcome, stored = rolled_up(info, committed)
    published += running.reseed(outcome)
    return published, stored, running


def assert_last_total_is_stored(published: list[LiveTotal], stored: Hours) -> None:
    last = published[-1]
    want = stored.get(last.hour)
    if want is None:
        assert last.hour_kwh is None  # the newest reading was quarantined, alone in its hour
        return
    assert last.hour_kwh is not None
    assert math.isclose(last.hour_kwh, want[0], rel_tol=1e-12, abs_tol=1e-9)
    assert last.quality == want[1]


@st.composite
def delivery(draw: st.DrawFn, readings: list[Reading]) -> tuple[list[list[Reading]], list[bool]]:
    """As tests/integration/test_hub_storage_property.py delivers: any order, redeliveries,
    batches of any size, rollup passes anywhere."""
    again = draw(st.lists(st.sampled_from(readings), max_size=len(readings)))
    stream = draw(st.permutations([*readings, *again]))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    batches = [b for b in batches if b]
    return batches, draw(st.lists(st.booleans(), min_size=len(batches), max_size=len(batches)))


@PROPERTY
@given(readings=meter_series(), rated=RATINGS, data=st.data())
def test_published_totals_equal_the_rollups_hours_whatever_the_delivery(
    readings: list[MeterReading], rated: float | None, data: st.DataObject
) -> None:
    info = device(rated=rated)
    batches, rolls = data.draw(delivery(with_seq(readings)))
    published, stored, _running = deliver(info, batches, rolls)
    assert_last_total_is_stored(published, stored)


@PROPERTY
@given(readings=meter_series(), rated=RATINGS)
def test_in_order_readings_are_totalled_at_commit_once_the_rollup_has_seeded(
    readings: list[MeterReading], rated: float | None
) -> None:
    """The common case: one reading per batch, in order, after a rollup has seeded the state."""
    info = device(rated=rated)
    sent = with_seq(readings)
    running = RunningTotals({DEVICE: info}.get)
    running.committed(sent[:1])
    running.reseed(rolled_up(info, {sent[0].ts: sent[0]})[0])
    committed = {sent[0].ts: sent[0]}
    ceiling = rated if rated is not None else MAX_POWER_W
    quarantined = {
        bad.reading.ts for bad in compute_hourly(readings, rated_power_w=ceiling).implausible
    }
    clean = True
    for before, r in pairwise(sent):
        committed[r.ts] = r
        (total,) = running.committed([r])
        # Known at once until the energy maths needs the next reading (a drop) or the power
        # limit quarantines one; from there the rollup decides.
        clean = clean and r.energy_kwh >= before.energy_kwh and r.ts not in quarantined
        assert total.clean == clean
        if clean:
            assert total.hour_kwh is not None
            energy, quality = hours_of(info, committed)[total.hour]
            assert math.isclose(total.hour_kwh, energy, rel_tol=1e-12, abs_tol=1e-9)
            assert total.quality == quality


def test_a_reading_that_does_not_follow_the_last_is_not_guessed() -> None:
    info = device(interval_s=60)
    running = RunningTotals({DEVICE: info}.get)
    base = [Reading(DEVICE, T0 + timedelta(minutes=k), 10.0 + k) for k in range(3)]
    committed = {r.ts: r for r in base}
    running.committed(base)
    assert [t.hour_kwh for t in running.reseed(rolled_up(info, committed)[0])] == [2.0]
    # One minute on: it follows (no seq, within 1.5 intervals), booked at once.
    (t,) = running.committed([Reading(DEVICE, T0 + timedelta(minutes=3), 13.5)])
    assert (t.clean, t.hour_kwh) == (True, 3.5)
    # Three minutes on: another replica may hold the reading between: dirty, no total.
    (t,) = running.committed([Reading(DEVICE, T0 + timedelta(minutes=6), 15.0)])
    assert (t.clean, t.hour_kwh) == (False, None)
    # The next one follows it, but the state stays dirty until the rollup re-seeds it.
    (t,) = running.committed([Reading(DEVICE, T0 + timedelta(minutes=7), 15.5)])
    assert t.hour_kwh is None
    committed.update(
        {
            ts: Reading(DEVICE, ts, e)
            for ts, e in [
                (T0 + timedelta(minutes=m), e) for m, e in [(3, 13.5), (6, 15.0), (7, 15.5)]
            ]
        }
    )
    (t,) = running.reseed(rolled_up(info, committed)[0])
    assert (t.clean, t.hour_kwh) == (True, 5.5)


def test_a_pass_older_than_what_made_the_state_dirty_does_not_clean_it() -> None:
    info = device()
    running = RunningTotals({DEVICE: info}.get)
    first = Reading(DEVICE, T0, 10.0, 0)
    committed = {first.ts: first}
    stale, _ = rolled_up(info, committed)  # its snapshot: before the late reading below
    running.committed([first, Reading(DEVICE, T0 + timedelta(minutes=10), 11.0, 1)])
    running.committed([Reading(DEVICE, T0 + timedelta(minutes=5), 10.2, 2)])  # late: dirty
    assert running.reseed(stale) == []  # stale: the state saw a newer reading


@PROPERTY
@given(
    energies=st.lists(st.floats(0, 5), min_size=1, max_size=30),
    gaps=st.lists(st.integers(1, 3 * 600), min_size=30, max_size=30),
    data=st.data(),
)
def test_interval_meters_sum_their_readings_by_hour_whatever_the_delivery(
    energies: list[float], gaps: list[int], data: st.DataObject
) -> None:
    info = device(kind="interval")
    ts, readings = T0, []
    for e, gap in zip(energies, gaps, strict=False):
        readings.append(MeterReading(ts, e))
        ts += timedelta(seconds=gap)
    batches, rolls = data.draw(delivery(with_seq(readings)))
    published, stored, _ = deliver(info, batches, rolls)
    assert_last_total_is_stored(published, stored)
    assert hour_floor(published[-1].reading.ts) == published[-1].hour


def test_a_total_shown_before_late_readings_is_corrected_when_the_rollup_quarantines_it() -> None:
    """Found by the property above: the newest reading alone is seeded as its hour's 0 kWh;
    older readings then arrive (the state goes dirty, nothing newer to publish), and the
    rollup over all of them quarantines the newest (50 kWh in an hour on a 10 kW meter). The
    0 kWh shown must be withdrawn: the last total is unknown, as the stored hours say."""
    info = device(rated=10_000.0)

    def at(h: int, s: int, kwh: float, seq: int) -> Reading:
        return Reading(DEVICE, T0 + timedelta(hours=h, seconds=s), kwh, seq, None, "v1")

    newest = at(1, 13, 50.0, 14)
    older = [at(0, s, 0.0, s) for s in range(14)]
    published, stored, _running = deliver(info, [[newest], [*older, newest]], [True, False])
    assert [(p.hour_kwh, p.clean) for p in published] == [(None, False), (0.0, True), (None, False)]
    assert newest.ts.replace(minute=0, second=0) not in stored
    assert_last_total_is_stored(published, stored)
