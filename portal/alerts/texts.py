"""What an alert says, in the reader's time zone. Pure: no I/O, the clock is a parameter.

Device 'Kitchen' used 5.4 kWh between 14:00 and 15:00, above its limit of 5 kWh
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.enums import AlertKind
from contract.payloads import AlertFacts

HOUR = timedelta(hours=1)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def kwh(value: float | None) -> str:
    """5.0 → "5 kWh", 5.4 → "5.4 kWh", 0.125 → "0.13 kWh"."""
    if value is None:
        return "? kWh"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} kWh"


def _clock(ts: datetime, tz: ZoneInfo, now: datetime) -> str:
    local = ts.astimezone(tz)
    day = "" if local.date() == now.astimezone(tz).date() else local.strftime(" on %a %d %b")
    return local.strftime("%H:%M") + day


def _hour_span(hour: datetime, tz: ZoneInfo, now: datetime) -> str:
    start, end = hour.astimezone(tz), (hour + HOUR).astimezone(tz)
    fmt = "%H:%M %Z" if start.strftime("%H:%M") == end.strftime("%H:%M") else "%H:%M"
    day = "" if start.date() == now.astimezone(tz).date() else start.strftime(" on %a %d %b")
    return f"between {start.strftime(fmt)} and {end.strftime(fmt)}{day}"


def describe(alert: AlertFacts, device_name: str, time_zone: str, now: datetime) -> str:
    tz = zone(time_zone)
    device = f"Device '{device_name}'"
    if alert.kind == "offline":
        return f"{device} went offline at {_clock(alert.raised_at, tz, now)}"
    if alert.kind == "online":
        return f"{device} is back online since {_clock(alert.raised_at, tz, now)}"
    if alert.hour is None:
        return f"{device}: {alert.kind.replace('_', ' ')}"
    span = _hour_span(alert.hour, tz, now)
    limit = kwh(alert.limit_kwh)
    if alert.kind == "early_warning":
        return (
            f"{device} is on course to use {kwh(alert.projected_kwh)} {span}, above its limit "
            f"of {limit} ({kwh(alert.value_kwh)} so far)"
        )
    used = alert.final_kwh if alert.final_kwh is not None else alert.value_kwh
    if alert.status == "retracted":
        return (
            f"Retracted: late readings put {device} at {kwh(used)} {span}, "
            f"within its limit of {limit}"
        )
    late = " (late readings)" if alert.late else ""
    return f"{device} used {kwh(used)} {span}, above its limit of {limit}{late}"


KIND_LABELS: Final[dict[AlertKind, str]] = {
    "hourly_limit": "Hourly limit exceeded",
    "early_warning": "Early warning",
    "offline": "Device offline",
    "online": "Device back online",
}
"""The one name of each alert kind, wherever a person reads it: the alert lists, the chat's
alert reference and (through ``BROWSER_LABELS``) the browser's toasts."""

BROWSER_LABELS: Final = {"alert_kind": KIND_LABELS}
"""Labels the browser scripts need, rendered into every signed-in page (base.html) as the JSON
data block ``#ems-labels``: the scripts keep no list of their own."""


def local_clock(time_zone: str) -> Callable[[datetime], str]:
    """For pages: a timestamp as "2026-11-25 14:03" in the reader's time zone."""
    tz = zone(time_zone)
    return lambda ts: ts.astimezone(tz).strftime("%Y-%m-%d %H:%M")
