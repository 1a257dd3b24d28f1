"""Durations and points in time as people type them: ``90s``, ``1h30m``, ``-10m``, ``2d``,
``now``, ``-1d`` (relative to now) or RFC 3339 (``2026-11-25T10:00:00Z``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, *, signed: bool = False) -> timedelta:
    """``1h30m``, ``45m``, ``90`` (seconds), and with ``signed`` a leading ``+`` or ``-``."""
    raw = text.strip()
    sign = 1.0
    if signed and raw[:1] in "+-" and raw:
        sign, raw = (-1.0 if raw[0] == "-" else 1.0), raw[1:]
    try:
        return timedelta(seconds=sign * float(raw))
    except ValueError:
        pass
    pos, seconds = 0, 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or not raw:
        example = "-10m, +2h" if signed else "90s, 45m, 1h30m, 2d"
        raise ValueError(f"{text!r} is not a duration (examples: {example})")
    return timedelta(seconds=sign * seconds)


def parse_time(text: str, now: datetime) -> datetime:
    """``now``, a signed offset from now (``-1d``, ``+2h``) or an RFC 3339 time with an offset."""
    raw = text.strip()
    if raw == "now":
        return now
    if raw[:1] in "+-":
        return now + parse_duration(raw, signed=True)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use now, an offset like -1d, or RFC 3339 "
            "(2026-11-25T10:00:00Z)"
        ) from None
    if value.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset: add Z or +01:00")
    return value.astimezone(UTC)


def parse_offset_or_time(text: str, start: datetime) -> datetime:
    """When a fault happens: an offset from the simulation start (``2h``) or an RFC 3339 time."""
    raw = text.strip()
    if raw[:1].isdigit() and "T" not in raw and "-" not in raw:
        return start + parse_duration(raw)
    return parse_time(raw, start)


def floor_time(ts: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return ts - (ts - epoch) % step
