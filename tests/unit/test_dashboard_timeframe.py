"""Local days as UTC hours, and the dashboards' query parameters (portal.dashboards.timeframe)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.dashboards.timeframe import (
    day_hours,
    day_range,
    day_starts,
    instant_range,
    parse_date,
    parse_instant,
)
from portal.errors import BadRequest, Unprocessable

H = timedelta(hours=1)
BUCHAREST = ZoneInfo("Europe/Bucharest")
# Whole-hour and half-hour offsets, DST at 02:00/03:00, at midnight (Santiago, Beirut), by
# half an hour (Lord Howe), and a 45-minute offset (Chatham).
ZONES = [
    "UTC",
    "Europe/Bucharest",
    "America/New_York",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Beirut",
    "Pacific/Chatham",
]


@pytest.mark.parametrize(
    ("day", "hours", "first"),
    [
        ("2026-03-29", 23, "2026-03-28T22:00:00+00:00"),
        ("2026-10-25", 25, "2026-10-24T21:00:00+00:00"),
        ("2026-06-15", 24, "2026-06-14T21:00:00+00:00"),
    ],
)
def test_daylight_saving_days_have_23_or_25_hours(day: str, hours: int, first: str) -> None:
    found = day_hours(date.fromisoformat(day), BUCHAREST)
    assert len(found) == hours
    assert found[0] == datetime.fromisoformat(first)
    assert all(b - a == H for a, b in pairwise(found))


def test_a_half_hour_zone_starts_its_day_at_the_first_whole_utc_hour() -> None:
    hours = day_hours(date(2026, 3, 1), ZoneInfo("Asia/Kolkata"))  # midnight is 18:30 UTC
    assert hours[0] == datetime(2026, 2, 28, 19, tzinfo=UTC)
    assert len(hours) == 24


@given(
    zone=st.sampled_from(ZONES),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
)
def test_every_utc_hour_belongs_to_exactly_the_local_day_it_starts_in(zone: str, day: date) -> None:
    tz = ZoneInfo(zone)
    hours, following = day_hours(day, tz), day_hours(day + timedelta(days=1), tz)
    assert hours[-1] + H == following[0]  # no hour lost or counted twice between days
    assert {h.astimezone(tz).date() for h in hours} == {day}
    assert 22 <= len(hours) <= 26
    starts = day_starts(day, 2, tz)
    assert starts == [hours[0], following[0], following[-1] + H]


def test_dates_are_strict_iso_and_in_range() -> None:
    assert parse_date("date", "2026-03-29") == date(2026, 3, 29)
    for bad in ("2026-3-29", "29.03.2026", "2026-02-30", "2026-03-29T00:00", "2026-W13-1", ""):
        with pytest.raises(BadRequest, match="is not a date"):
            parse_date("date", bad)
    with pytest.raises(Unprocessable, match="outside"):  # a date, but not one we keep
        parse_date("date", "1969-12-31")


def test_instants_are_local_days_or_timestamps_with_an_offset() -> None:
    assert parse_instant("from", "2026-03-29", BUCHAREST, end=False) == datetime(
        2026, 3, 28, 22, tzinfo=UTC
    )
    assert parse_instant("to", "2026-03-29", BUCHAREST, end=True) == datetime(
        2026, 3, 29, 21, tzinfo=UTC
    )
    expected = datetime(2026, 3, 29, 7, tzinfo=UTC)
    for raw in ("2026-03-29T10:00:00+03:00", "2026-03-29T10:00:00 03:00", "2026-03-29T07:00:00Z"):
        assert parse_instant("from", raw, BUCHAREST, end=False) == expected
    with pytest.raises(BadRequest, match="with an offset"):
        parse_instant("from", "2026-03-29T10:00:00", BUCHAREST, end=False)
    # The ends of the calendar are a 422, not an overflow inside astimezone().
    for far in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        with pytest.raises(Unprocessable, match="outside"):
            parse_instant("to", far, BUCHAREST, end=True)


def test_ranges_default_to_recent_days_and_refuse_reversed_or_long_ones() -> None:
    span = day_range(None, "2026-03-29", BUCHAREST, max_days=31)
    assert (span.first, span.last, span.days) == (date(2026, 3, 23), date(2026, 3, 29), 7)
    with pytest.raises(Unprocessable, match="is after to"):
        day_range("2026-03-30", "2026-03-29", BUCHAREST, max_days=31)
    with pytest.raises(Unprocessable, match="at most 31"):
        day_range("2026-01-01", "2026-03-29", BUCHAREST, max_days=31)
    window = instant_range("2026-10-25", "2026-10-25", BUCHAREST, max_days=1)
    assert window.end - window.start == 25 * H  # a fall-back day still fits a one-day limit
    with pytest.raises(Unprocessable, match="not before"):
        instant_range("2026-10-25T10:00:00Z", "2026-10-25T10:00:00Z", BUCHAREST, max_days=1)
    with pytest.raises(Unprocessable, match="longer than 1 days"):
        instant_range("2026-10-24", "2026-10-25", BUCHAREST, max_days=1)


def test_a_day_that_starts_at_a_midnight_that_does_not_exist() -> None:
    # Beirut sprang forward at 00:00 on 2020-03-29: that day starts at 01:00 (22:00 UTC) and has
    # 23 hours; the day before keeps 24. (Found by the property test above.)
    tz = ZoneInfo("Asia/Beirut")
    before, gap_day = day_hours(date(2020, 3, 28), tz), day_hours(date(2020, 3, 29), tz)
    assert (len(before), len(gap_day)) == (24, 23)
    assert gap_day[0] == before[-1] + H == datetime(2020, 3, 28, 22, tzinfo=UTC)
