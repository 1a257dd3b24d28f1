"""`ems-sim check`: the series it sends, the hourly energy it expects, and its verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from device_sim.check_series import compare, expected_hourly, known_series, report, verdict

H10 = datetime(2026, 11, 25, 10, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return H10 + timedelta(minutes=minutes)


def test_the_known_series_is_seeded_on_the_grid_and_fills_whole_hours() -> None:
    end = datetime(2026, 11, 25, 13, tzinfo=UTC)
    series = known_series(end, 3, seed=1)
    assert series == known_series(end, 3, seed=1)
    assert [ts for ts, _ in series] == [H10 + timedelta(minutes=10 * i - 10) for i in range(19)]
    values = [v for _, v in series]
    assert values == sorted(values) and all(round(v, 3) == v for v in values)
    assert sorted(expected_hourly(series)) == [H10, at(60), at(120)]


def test_each_delta_belongs_to_the_hour_of_its_later_reading_and_the_first_is_a_baseline() -> None:
    series = [(at(0), 100.0), (at(30), 101.0), (at(60), 103.0), (at(90), 103.5), (at(120), 104.0)]
    assert expected_hourly(series) == {H10: 1.0, at(60): 2.5, at(120): 0.5}


def test_hours_are_ok_missing_or_different_and_the_verdict_says_which() -> None:
    expected = {H10: 1.0, at(60): 2.5, at(120): 0.5}
    stored = {H10: (1.0000000001, "measured"), at(60): (2.4, "measured")}
    checks = compare(expected, stored)
    assert [c.status for c in checks] == ["ok", "DIFFERENT", "MISSING"]
    ok, text = verdict(checks)
    assert not ok and text == "FAIL: 1 missing and 1 different of 3 hours"
    table = report(checks).splitlines()
    assert table[1].split() == ["2026-11-25", "10:00", "1.000000", "1.000000", "measured", "ok"]
    assert table[3].split() == ["2026-11-25", "12:00", "0.500000", "-", "-", "MISSING"]
    assert verdict(compare(expected, {h: (v, "measured") for h, v in expected.items()})) == (
        True,
        "PASS: all 3 hours stored as sent",
    )
