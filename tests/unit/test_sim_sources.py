"""Where a simulated meter's energy comes from: the synthetic profile and replay files."""

from __future__ import annotations

import itertools
import re
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from device_sim.profiles import ResidentialProfile
from device_sim.replay import ReplayError, ReplaySource, read_values
from device_sim.sources import RegisterSensor

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
TEN_MIN = timedelta(minutes=10)


def series(seed: int, start: datetime, n: int, step: timedelta = TEN_MIN) -> list[float]:
    sensor = RegisterSensor(ResidentialProfile(seed), start=start)
    return [sensor(start + i * step).energy_kwh for i in range(n)]


def hourly_means(profile: ResidentialProfile, days: list[datetime]) -> list[float]:
    """Mean kWh per hour of day over ``days``."""
    return [
        statistics.fmean(
            profile.energy_between(d + timedelta(hours=h), d + timedelta(hours=h + 1)) for d in days
        )
        for h in range(24)
    ]


def test_the_same_seed_gives_the_same_series_and_another_seed_another() -> None:
    assert series(7, MONDAY, 500) == series(7, MONDAY, 500)
    assert series(7, MONDAY, 500) != series(8, MONDAY, 500)


def test_the_register_only_increases_even_at_one_second_intervals() -> None:
    for seed in range(5):
        values = series(seed, MONDAY, 3000, timedelta(seconds=1))
        assert all(b > a for a, b in itertools.pairwise(values))
        values = series(seed, MONDAY, 2000)
        assert all(b > a for a, b in itertools.pairwise(values))


def test_the_energy_asked_for_does_not_depend_on_what_was_asked_before() -> None:
    # A profile remembers its last bucket's power (readings every second ask for the same
    # bucket 300 times): a fresh profile per question must give bit-identical answers,
    # within one bucket, across boundaries and over many buckets.
    warm = ResidentialProfile(11)
    t = MONDAY + timedelta(hours=7, seconds=250)
    steps = [1, 1, 30, 49, 1, 299, 300, 301, 7, 3600, 1, 0, 2]
    for a, b in itertools.pairwise(itertools.accumulate(steps, initial=0)):
        t0, t1 = t + timedelta(seconds=a), t + timedelta(seconds=b)
        assert warm.energy_between(t0, t1) == ResidentialProfile(11).energy_between(t0, t1)
    assert warm.energy_between(t + TEN_MIN, t) == 0.0


def test_a_weekday_has_a_low_night_a_morning_peak_and_a_larger_evening_peak() -> None:
    for seed in range(12):
        profile = ResidentialProfile(seed)
        weekdays = [MONDAY + timedelta(weeks=w, days=d) for w in range(8) for d in range(5)]
        hours = hourly_means(profile, weekdays)
        night = statistics.fmean(hours[1:5])
        assert max(hours[6:9]) > 1.8 * night  # morning
        assert max(hours[18:22]) > 3 * night  # evening
        assert max(hours[18:22]) > max(hours[6:9])
        assert hours.index(max(hours)) in range(17, 22)
        assert 6 < sum(hours) < 20  # kWh per day


def test_weekends_differ_later_morning_and_more_at_midday() -> None:
    profile = ResidentialProfile(3)
    weekdays = [MONDAY + timedelta(weeks=w, days=d) for w in range(8) for d in range(5)]
    weekends = [MONDAY + timedelta(weeks=w, days=d) for w in range(8) for d in (5, 6)]
    week, end = hourly_means(profile, weekdays), hourly_means(profile, weekends)
    assert end.index(max(end[5:12])) > week.index(max(week[5:12]))
    assert statistics.fmean(end[11:15]) > 1.5 * statistics.fmean(week[11:15])


def test_the_shape_follows_the_households_local_time() -> None:
    tokyo = ResidentialProfile(3, ZoneInfo("Asia/Tokyo"))
    days = [MONDAY + timedelta(days=d) for d in range(0, 60, 7)]
    by_utc_hour = hourly_means(tokyo, days)
    # Tokyo is UTC+9: the local evening peak (18-22h) falls at 9-13h UTC.
    assert by_utc_hour.index(max(by_utc_hour)) in range(8, 14)


def test_a_restarted_meter_continues_its_register_from_the_last_reading() -> None:
    profile = ResidentialProfile(5)
    first = RegisterSensor(profile, start=MONDAY)
    last = first(MONDAY + 3 * TEN_MIN)
    again = RegisterSensor(profile, start=MONDAY, last=(MONDAY + 3 * TEN_MIN, last.energy_kwh))
    assert again(MONDAY + 4 * TEN_MIN).energy_kwh == first(MONDAY + 4 * TEN_MIN).energy_kwh


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sensor.csv"
    path.write_text(text)
    return path


def test_a_replay_file_in_the_sensor_csv_format_is_replayed_value_for_value(
    tmp_path: Path,
) -> None:
    # The first lines of the real sensor.csv, then large values with all their decimals.
    lines = ["0", "0.5", "1", "3.64170771", "7.55216266", "", "110683.86212345", "110700.5"]
    path = write(tmp_path, "\n".join(lines) + "\n")
    sensor = RegisterSensor(ReplaySource.load(path, MONDAY), start=MONDAY)
    sent = [sensor(MONDAY + i * TEN_MIN).energy_kwh for i in range(7)]
    assert sent == [float(v) for v in lines if v]


def test_a_replay_is_interpolated_between_lines_and_loops_upward(tmp_path: Path) -> None:
    source = ReplaySource.load(write(tmp_path, "10\n11\n13\n"), MONDAY)
    sensor = RegisterSensor(source, start=MONDAY)
    five = timedelta(minutes=5)
    values = [sensor(MONDAY + i * five).energy_kwh for i in range(9)]
    # 10, 10.5, 11, 12, 13 | then again from the top, continuing from 13: 13.5, 14, 15, 16
    assert values == [10, 10.5, 11, 12, 13, 13.5, 14, 15, 16]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n2\nabc\n", "line 3: 'abc' is not a number"),
        ("1\n-2\n", "line 2: '-2' is not a kWh register value"),
        ("1\n", "needs at least two values (it has 1)"),
        ("1;2\n3;4\n", "line 1: '1;2' is not a number"),
    ],
)
def test_a_bad_replay_file_is_reported_with_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    read_values.cache_clear()
    with pytest.raises(ReplayError, match=re.escape(message)):
        read_values(write(tmp_path, text))
