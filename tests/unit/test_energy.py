"""Hourly energy of a cumulative meter (hub.energy) against ARCHITECTURE.md section 4."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hub.energy import (
    EnergyResult,
    MeterReading,
    Quality,
    compute_hourly,
    hour_floor,
    recompute_anchor_index,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SENSOR_CSV = Path(__file__).resolve().parents[2] / "data" / "sensor.csv"
PROPERTY = settings(max_examples=200, deadline=None)

M, E, G, R = Quality.MEASURED, Quality.ESTIMATED, Quality.GLITCH, Quality.RESET


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def series(*points: tuple[float, float]) -> list[MeterReading]:
    return [MeterReading(at(minutes), kwh) for minutes, kwh in points]


def by_hour_index(result: EnergyResult) -> dict[int, tuple[float, Quality, int]]:
    return {
        (h - T0) // HOUR: (round(v.energy_kwh, 9), v.quality, v.readings)
        for h, v in result.hours.items()
    }


# --- table tests -----------------------------------------------------------------------------

TABLE = [
    ("baseline only", [(5, 100.0)], None, {0: (0, M, 1)}, []),
    (
        "steady 10-minute series",
        [(10 * i, 1.0 * i) for i in range(13)],
        None,
        {0: (5, M, 6), 1: (6, M, 6), 2: (1, M, 1)},
        [],
    ),
    (
        "exactly one hour goes to the later hour",
        [(30, 10), (90, 13)],
        None,
        {0: (0, M, 1), 1: (3, M, 1)},
        [],
    ),
    (
        "hh:00 to hh:00 goes to the later hour",
        [(0, 10), (60, 12)],
        None,
        {0: (0, M, 1), 1: (2, M, 1)},
        [],
    ),
    (
        "3.5 h gap spreads by time",
        [(45, 0), (255, 7)],
        None,
        {0: (0.5, E, 1), 1: (2, E, 0), 2: (2, E, 0), 3: (2, E, 0), 4: (0.5, E, 1)},
        [],
    ),
    (
        "gap ending on the hour gives that hour no share",
        [(0, 0), (120, 4)],
        None,
        {0: (2, E, 1), 1: (2, E, 0), 2: (0, M, 1)},
        [],
    ),
    (
        "gap then ordinary readings",
        [(50, 0), (170, 2), (180, 3)],
        None,
        {0: (2 / 12, E, 1), 1: (1, E, 0), 2: (10 / 12, E, 1), 3: (1, M, 1)},
        [],
    ),
    (
        "glitch to zero then recovery",
        [(0, 100), (10, 101), (20, 0), (30, 102)],
        None,
        {0: (2, G, 4)},
        [],
    ),
    (
        "glitch alone in its hour",
        [(50, 100), (60, 0), (70, 100.5)],
        None,
        {0: (0, M, 1), 1: (0.5, G, 2)},
        [],
    ),
    (
        "recovery to exactly the pre-drop value",
        [(0, 100), (10, 50), (20, 100)],
        None,
        {0: (0, G, 3)},
        [],
    ),
    (
        "reset counts the post-reset value",
        [(0, 500), (10, 501), (20, 2), (30, 3)],
        None,
        {0: (4, R, 4)},
        [],
    ),
    ("reset to zero", [(0, 500), (10, 0), (20, 0.5)], None, {0: (0.5, R, 3)}, []),
    (
        "reset across a gap",
        [(0, 500), (150, 2), (160, 3)],
        None,
        {0: (0.8, E, 1), 1: (0.8, E, 0), 2: (1.4, R, 2)},
        [],
    ),
    (
        "tail drop is a provisional glitch",
        [(0, 500), (50, 501), (65, 3)],
        None,
        {0: (1, M, 2), 1: (0, G, 1)},
        [],
    ),
    (
        "tail drop becomes a reset",
        [(0, 500), (50, 501), (65, 3), (75, 4)],
        None,
        {0: (1, M, 2), 1: (4, R, 2)},
        [],
    ),
    (
        "tail drop becomes a glitch",
        [(0, 500), (50, 501), (65, 3), (75, 502)],
        None,
        {0: (1, M, 2), 1: (1, G, 2)},
        [],
    ),
    (
        "implausible jump is quarantined",
        [(0, 0), (10, 0.4), (20, 5), (30, 0.8)],
        3000.0,
        {0: (0.8, M, 3)},
        [(20, 27_600)],
    ),
    (
        "rated power exactly met is accepted",
        [(0, 0), (60, 3)],
        3000.0,
        {0: (0, M, 1), 1: (3, M, 1)},
        [],
    ),
    (
        "implausible reset is quarantined",
        [(0, 500), (10, 100), (20, 99)],
        3000.0,
        {0: (0, G, 2)},
        [(10, 600_000)],
    ),
]


@pytest.mark.parametrize(
    ("points", "rated_power_w", "expected", "quarantined"),
    [pytest.param(*case[1:], id=case[0]) for case in TABLE],
)
def test_hourly_energy_table(
    points: list[tuple[float, float]],
    rated_power_w: float | None,
    expected: dict[int, tuple[float, Quality, int]],
    quarantined: list[tuple[float, float]],
) -> None:
    result = compute_hourly(series(*points), rated_power_w=rated_power_w)

    assert by_hour_index(result) == {
        h: (round(kwh, 9), quality, n) for h, (kwh, quality, n) in expected.items()
    }
    assert [(i.reading.ts, round(i.implied_power_w, 6)) for i in result.implausible] == [
        (at(minutes), power) for minutes, power in quarantined
    ]
    assert all(h.hour == key and key.tzinfo is UTC for key, h in result.hours.items())


def test_empty_series_has_no_hours() -> None:
    assert compute_hourly([]) == EnergyResult({}, [])


@pytest.mark.parametrize(
    "points",
    [[(10, 1), (0, 2)], [(0, 1), (0, 1)], [(0, 1), (10, 2), (10, 3)]],
    ids=["unsorted", "duplicate", "duplicate later"],
)
def test_unsorted_or_duplicate_times_are_refused(points: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError, match="sorted by time with unique times"):
        compute_hourly(series(*points))


@pytest.mark.parametrize("rated", [0.0, -5.0, math.nan, math.inf])
def test_rated_power_must_be_positive(rated: float) -> None:
    with pytest.raises(ValueError, match="rated power"):
        compute_hourly(series((0, 1)), rated_power_w=rated)


def test_readings_need_a_time_zone_and_a_real_register() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        MeterReading(datetime(2026, 1, 1), 1.0)  # noqa: DTZ001 - the naive time under test
    for bad in (math.nan, math.inf, -0.5):
        with pytest.raises(ValueError, match="not a number >= 0"):
            MeterReading(T0, bad)


def test_hour_floor_is_the_utc_clock_hour() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    assert hour_floor(datetime(2026, 1, 1, 5, 45, 12, 7, tzinfo=india)) == T0
    assert hour_floor(at(119.99)) == T0 + HOUR
    assert hour_floor(at(120)) == T0 + 2 * HOUR
    with pytest.raises(ValueError, match="no time zone"):
        hour_floor(datetime(2026, 1, 1, 5))  # noqa: DTZ001 - the naive time under test


def test_quality_severity_orders_the_flags() -> None:
    assert sorted(Quality, key=lambda q: q.severity) == [M, E, G, R]
    assert [str(q) for q in (M, E, G, R)] == ["measured", "estimated", "glitch", "reset"]


# --- an independent reference: label every reading, then integrate booked amounts per hour ---

ACCEPTED = ("baseline", "increase", "reset")
WORST_LAST = ["measured", "estimated", "glitch", "reset"]


@dataclass(frozen=True)
class Booked:
    start: datetime
    end: datetime
    amount: float

    def before(self, instant: datetime) -> float:
        """How much of the amount is booked before ``instant``."""
        if self.end - self.start <= HOUR:  # a step at the start of the later reading's hour
            return self.amount if instant > hour_floor(self.end) else 0.0
        clamped = min(max(instant, self.start), self.end)
        return self.amount * ((clamped - self.start) / (self.end - self.start))

    def overlaps(self, hour: datetime) -> bool:
        return self.end - self.start > HOUR and min(hour + HOUR, self.end) > max(hour, self.start)


def reference_labels(
    readings: list[MeterReading], rated: float | None
) -> tuple[list[str], list[Booked]]:
    labels: list[str] = []
    booked: list[Booked] = []
    for i, reading in enumerate(readings):
        if i == 0:
            labels.append("baseline")
            continue
        base = readings[max(j for j in range(i) if labels[j] in ACCEPTED)]
        following = readings[i + 1 : i + 2]
        if reading.energy_kwh >= base.energy_kwh:
            label, amount = "increase", reading.energy_kwh - base.energy_kwh
        elif following and following[0].energy_kwh < base.energy_kwh:
            label, amount = "reset", reading.energy_kwh
        else:
            labels.append("glitch")
            continue
        if rated is not None and amount * 1000 / ((reading.ts - base.ts) / HOUR) > rated:
            label = "quarantined"
        else:
            booked.append(Booked(base.ts, reading.ts, amount))
        labels.append(label)
    return labels, booked


def reference(
    readings: list[MeterReading], rated: float | None = None
) -> dict[datetime, tuple[float, str, int]]:
    labels, booked = reference_labels(readings, rated)
    out: dict[datetime, tuple[float, str, int]] = {}
    if not readings:
        return out
    hour = hour_floor(readings[0].ts)
    while hour <= readings[-1].ts:
        here = [lab for r, lab in zip(readings, labels, strict=True) if hour_floor(r.ts) == hour]
        counted = [lab for lab in here if lab != "quarantined"]
        flags = ["measured"] + [lab for lab in counted if lab in ("glitch", "reset")]
        if any(b.overlaps(hour) for b in booked):
            flags.append("estimated")
        if counted or len(flags) > 1:
            energy = sum(b.before(hour + HOUR) - b.before(hour) for b in booked)
            out[hour] = (energy, max(flags, key=WORST_LAST.index), len(counted))
        hour += HOUR
    return out


GAPS = st.one_of(
    st.integers(1, 20 * 60),
    st.sampled_from([600, 3600, 3601, 7200]),
    st.integers(3600, 5 * 3600),
).map(lambda seconds: timedelta(seconds=seconds))
STEPS = st.one_of(st.just(0.0), st.integers(0, 12).map(lambda q: q / 4), st.floats(0, 3))
KINDS = st.sampled_from(["step"] * 6 + ["glitch", "reset", "spike"])
RATINGS = st.one_of(st.none(), st.sampled_from([5_000.0, 50_000.0, 500_000.0]))


@st.composite
def meter_series(draw: st.DrawFn) -> list[MeterReading]:
    """Random steps and gaps (some on the hour), glitches, resets, spikes far above the register."""
    ts = T0 + timedelta(seconds=draw(st.one_of(st.just(0), st.integers(0, 3 * 3600))))
    register = draw(st.floats(0, 1000))
    out = [MeterReading(ts, register)]
    for _ in range(draw(st.integers(0, 29))):
        ts += draw(GAPS)
        kind = draw(KINDS)
        if kind == "glitch" and register > 0:
            value = draw(st.one_of(st.just(0.0), st.floats(0, register, exclude_max=True)))
        elif kind == "reset":
            register = value = draw(st.floats(0, 5))
        elif kind == "spike":
            value = register + draw(st.floats(50, 500))
        else:
            register = value = register + draw(STEPS)
        out.append(MeterReading(ts, value))
    return out


def test_reference_agrees_with_a_hand_worked_case() -> None:
    readings = series((45, 0), (255, 7), (265, 0), (275, 8))
    got = {(h - T0) // HOUR: (round(e, 9), q, n) for h, (e, q, n) in reference(readings).items()}
    assert got == {
        0: (0.5, "estimated", 1),
        1: (2, "estimated", 0),
        2: (2, "estimated", 0),
        3: (2, "estimated", 0),
        4: (1.5, "glitch", 3),
    }


@PROPERTY
@given(readings=meter_series(), rated=RATINGS)
def test_compute_hourly_matches_the_reference(
    readings: list[MeterReading], rated: float | None
) -> None:
    result = compute_hourly(readings, rated_power_w=rated)
    expected = reference(readings, rated)

    assert list(result.hours) == list(expected)
    for hour, got in result.hours.items():
        energy, quality, count = expected[hour]
        assert math.isclose(got.energy_kwh, energy, abs_tol=1e-6), hour
        assert (got.hour, got.quality, got.readings) == (hour, quality, count)
    labels, booked = reference_labels(readings, rated)
    assert [i.reading for i in result.implausible] == [
        r for r, label in zip(readings, labels, strict=True) if label == "quarantined"
    ]
    total = math.fsum(h.energy_kwh for h in result.hours.values())
    assert math.isclose(total, math.fsum(b.amount for b in booked), rel_tol=1e-12, abs_tol=1e-9)


@PROPERTY
@given(readings=meter_series())
def test_energy_is_conserved_and_never_negative(readings: list[MeterReading]) -> None:
    result = compute_hourly(readings)
    values = [r.energy_kwh for r in readings]
    # Without drops the hours add up to the register's rise.
    if all(a <= b for a, b in pairwise(values)):
        total = math.fsum(h.energy_kwh for h in result.hours.values())
        assert math.isclose(total, values[-1] - values[0], rel_tol=1e-12, abs_tol=1e-9)
    assert all(h.energy_kwh >= -1e-9 for h in result.hours.values())
    assert sum(h.readings for h in result.hours.values()) == len(readings)


# --- incremental recomputation ---------------------------------------------------------------


def quarantine_free(readings: list[MeterReading], result: EnergyResult, lo: int, hi: int) -> bool:
    quarantined = {i.reading for i in result.implausible}
    return not quarantined.intersection(readings[max(lo, 0) : hi])


@PROPERTY
@given(readings=meter_series(), rated=RATINGS, data=st.data())
def test_restarting_at_the_anchor_reproduces_every_hour_from_the_returned_hour(
    readings: list[MeterReading], rated: float | None, data: st.DataObject
) -> None:
    first_changed = data.draw(st.integers(0, len(readings) - 1))
    anchor, hour = recompute_anchor_index(readings, first_changed)
    full = compute_hourly(readings, rated_power_w=rated)
    assume(quarantine_free(readings, full, anchor - 1, first_changed))
    part = compute_hourly(readings[anchor:], rated_power_w=rated)

    assert anchor <= first_changed
    assert hour <= hour_floor(readings[first_changed].ts)
    assert {h: v for h, v in part.hours.items() if h >= hour} == {
        h: v for h, v in full.hours.items() if h >= hour
    }


@PROPERTY
@given(readings=meter_series(), rated=RATINGS, data=st.data())
def test_hours_before_the_returned_hour_are_unchanged_by_late_readings(
    readings: list[MeterReading], rated: float | None, data: st.DataObject
) -> None:
    first_changed = data.draw(st.integers(0, len(readings) - 1))
    later = readings[first_changed + 1 :]
    # What the hub had before: the same prefix, then nothing, or some of the later readings.
    earlier = readings[:first_changed] + data.draw(
        st.one_of(st.just([]), st.just(later), st.lists(st.sampled_from(later), unique=True))
        if later
        else st.just([])
    )
    earlier.sort(key=lambda r: r.ts)
    anchor, hour = recompute_anchor_index(readings, first_changed)
    now = compute_hourly(readings, rated_power_w=rated)
    assume(quarantine_free(readings, now, anchor - 1, first_changed))
    before = compute_hourly(earlier, rated_power_w=rated)

    assert {h: v for h, v in before.hours.items() if h < hour} == {
        h: v for h, v in now.hours.items() if h < hour
    }


@PROPERTY
@given(readings=meter_series(), data=st.data())
def test_anchor_found_in_a_suffix_is_the_anchor_of_the_whole_series(
    readings: list[MeterReading], data: st.DataObject
) -> None:
    first_changed = data.draw(st.integers(0, len(readings) - 1))
    start = data.draw(st.integers(0, first_changed))
    anchor, hour = recompute_anchor_index(readings[start:], first_changed - start)
    assert anchor == 0 or (anchor + start, hour) == recompute_anchor_index(readings, first_changed)


@pytest.mark.parametrize(
    ("points", "first_changed", "expected"),
    [
        pytest.param([(10 * i, 1.0 * i) for i in range(13)], 12, (5, 1), id="append on time"),
        pytest.param(
            [(0, 0), (10, 1), (20, 2), (30, 3), (40, 4), (50, 5), (60, 6), (70, 1), (80, 7)],
            8,
            (5, 1),
            id="reading after a drop decides glitch or reset",
        ),
        pytest.param([(0, 0), (10, 1), (250, 5)], 2, (0, 0), id="gap reaches back to hour 0"),
        pytest.param([(0, 0), (10, 1)], 0, (0, 0), id="first reading changed"),
    ],
)
def test_recompute_anchor_table(
    points: list[tuple[float, float]], first_changed: int, expected: tuple[int, int]
) -> None:
    readings = series(*points)
    anchor, hour = recompute_anchor_index(readings, first_changed)
    assert (anchor, hour) == (expected[0], T0 + expected[1] * HOUR)
    full = compute_hourly(readings).hours
    assert {h: v for h, v in compute_hourly(readings[anchor:]).hours.items() if h >= hour} == {
        h: v for h, v in full.items() if h >= hour
    }


def test_late_reading_after_a_drop_rewrites_the_gap_before_the_drop() -> None:
    # A drop 2.5 h after the last reading is a provisional glitch until the next reading shows
    # it was a reset; then the post-reset value spreads back over the gap, into hours 0 and 1.
    before = series((0, 10), (150, 2))
    now = series((0, 10), (150, 2), (160, 3))
    anchor, hour = recompute_anchor_index(now, first_changed=2)

    assert (anchor, hour) == (0, T0)
    assert by_hour_index(compute_hourly(before)) == {0: (0, M, 1), 2: (0, G, 1)}
    assert by_hour_index(compute_hourly(now)) == {0: (0.8, E, 1), 1: (0.8, E, 0), 2: (1.4, R, 2)}


def test_recompute_anchor_refuses_an_index_outside_the_series() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        recompute_anchor_index(series((0, 0), (10, 1)), 2)


# --- replay of the real sensor data (data/sensor.csv) -------------------------------------------


def test_replaying_sensor_csv_books_each_hour_from_its_own_readings() -> None:
    values = [float(line) for line in SENSOR_CSV.read_text().split()]
    readings = [MeterReading(at(10 * i), v) for i, v in enumerate(values)]
    result = compute_hourly(readings)

    # Reading i is at i * 10 min, so hour h holds readings 6h .. 6h+5 and its energy is the rise
    # from the last reading of hour h-1 (6h-1) to its own last reading.
    assert len(values) == 10_376
    assert len(result.hours) == math.ceil(len(values) / 6)
    for h, got in enumerate(result.hours.values()):
        last = min(6 * h + 5, len(values) - 1)
        expected = values[last] - values[max(6 * h - 1, 0)]
        assert got.hour == T0 + h * HOUR
        assert math.isclose(got.energy_kwh, expected, rel_tol=1e-9, abs_tol=1e-6), h
        assert (got.quality, got.readings) == (M, last - 6 * h + 1)
    total = math.fsum(h.energy_kwh for h in result.hours.values())
    assert math.isclose(total, values[-1] - values[0], rel_tol=1e-12)
