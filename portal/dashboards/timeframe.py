"""Local days and ranges: the query parameters parsed and checked, and their UTC bounds. Pure.

An hour belongs to the local day in which it starts — the same rule as grouping on
``(hour AT TIME ZONE tz)::date`` in SQL — so a day's hours are the UTC clock hours from the
first hour starting at or after local midnight up to (excluding) the first one starting at or
after the next local midnight: 23 on a spring-forward day, 25 on a fall-back day, 24 otherwise
(also in zones with half-hour offsets, whose midnights fall mid-hour).
"""

from __future__ import annotations

import functools
import logging
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from portal.errors import BadRequest, Unprocessable

log = logging.getLogger("portal.dashboards")

HOUR = timedelta(hours=1)
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(2199, 12, 31)
MAX_DAILY_DAYS = 366 * 3  # daily totals: three years of bars at most
MAX_READINGS_DAYS = 366  # raw readings (paged) and their CSV export
MAX_HOURLY_EXPORT_DAYS = 366 * 3
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # fromisoformat alone also takes 2026-W13-1


@functools.lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The user's zone; users.time_zone is validated on the way in, UTC if it still fails."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r in users.time_zone; using UTC", name[:64])
        return zoneinfo.ZoneInfo("UTC")


def ceil_hour(t: datetime) -> datetime:
    # Compared in UTC: a local time in a DST gap (a day starting at a midnight that does not
    # exist, as in Beirut on 2020-03-29) is unequal to every time of another zone (PEP 495).
    utc = t.astimezone(UTC)
    floor = utc.replace(minute=0, second=0, microsecond=0)
    return floor if floor == utc else floor + HOUR


def day_bounds(day: date, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """UTC hours [lo, hi) of the local day ``day``."""
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    return ceil_hour(start), ceil_hour(end)


def day_starts(first: date, days: int, tz: zoneinfo.ZoneInfo) -> list[datetime]:
    """The first UTC hour of each of ``days`` local days from ``first``, and of the day after:
    day k is [starts[k], starts[k + 1])."""
    return [
        ceil_hour(datetime.combine(first + timedelta(days=k), time(), tz)) for k in range(days + 1)
    ]


def day_hours(day: date, tz: zoneinfo.ZoneInfo) -> list[datetime]:
    lo, hi = day_bounds(day, tz)
    return [lo + k * HOUR for k in range(int((hi - lo) / HOUR))]


def local_today(tz: zoneinfo.ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(tz).date()


def parse_date(name: str, raw: str) -> date:
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw[:40]!r} is not a date — use YYYY-MM-DD") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise Unprocessable(f"{name}: {raw} is outside {MIN_DATE} … {MAX_DATE}")
    return value


def parse_instant(name: str, raw: str, tz: zoneinfo.ZoneInfo, *, end: bool) -> datetime:
    """A date (the local day: its start, or for an ``end`` the start of the next day) or an
    RFC 3339 timestamp with an offset."""
    if len(raw) <= 10:
        day = parse_date(name, raw)
        start = datetime.combine(day + timedelta(days=1) if end else day, time(), tz)
        return start.astimezone(UTC)
    if len(raw) > 6 and raw[-6] == " ":  # an unencoded "+" in a query string arrives as " "
        raw = raw[:-6] + "+" + raw[-5:]
    try:  # RFC 3339 allows a lower-case t and z; fromisoformat does not
        value = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise BadRequest(
            f"{name}: {raw[:40]!r} is neither a date (YYYY-MM-DD) nor a timestamp with an offset"
            " (2026-03-29T10:00:00+03:00)"
        )
    # Compare before converting: year 1 or 9999 with an offset overflows astimezone().
    if not MIN_DATE <= value.date() <= MAX_DATE:
        raise Unprocessable(f"{name}: {raw[:40]} is outside {MIN_DATE} … {MAX_DATE}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DayRange:
    first: date
    last: date  # inclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def day_range(
    raw_from: str | None, raw_to: str | None, tz: zoneinfo.ZoneInfo, *, max_days: int
) -> DayRange:
    """``from``/``to`` as local dates, both included; by default the last seven days."""
    last = parse_date("to", raw_to) if raw_to else local_today(tz)
    first = parse_date("from", raw_from) if raw_from else last - timedelta(days=6)
    if first > last:
        raise Unprocessable(f"from ({first}) is after to ({last})")
    span = DayRange(first, last)
    if span.days > max_days:
        raise Unprocessable(f"the range has {span.days} days; at most {max_days} are allowed")
    return span


@dataclass(frozen=True, slots=True)
class InstantRange:
    start: datetime
    end: datetime  # exclusive


def instant_range(
    raw_from: str | None, raw_to: str | None, tz: zoneinfo.ZoneInfo, *, max_days: int
) -> InstantRange:
    """``from``/``to`` as dates (local days, ``to`` included) or timestamps (``to`` excluded);
    by default today."""
    today = local_today(tz).isoformat()
    start = parse_instant("from", raw_from or today, tz, end=False)
    end = parse_instant("to", raw_to or today, tz, end=True)
    if start >= end:
        raise Unprocessable(f"from ({raw_from or today}) is not before to ({raw_to or today})")
    if end - start > timedelta(days=max_days, hours=1):  # +1 h: a range of fall-back days
        raise Unprocessable(f"the range is longer than {max_days} days; ask for less")
    return InstantRange(start, end)
