"""Response shapes of the consumption, readings and dashboard views.

Timestamps are ISO-8601 with the user's UTC offset (``2026-10-25T03:00:00+02:00``): the UTC
instant and the local wall-clock label in one value. Energy is kWh.

An hour with no stored energy is reported, not dropped: ``energy_kwh: null``, ``quality:
"missing"``, ``readings: 0`` — no data is not zero consumption. Totals add up the hours that
have a value, so the sum of a day's ``energy_kwh`` (nulls as 0) is its ``total_kwh``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import msgspec

HourQuality = Literal["measured", "estimated", "reset", "glitch", "missing"]
# A day is "estimated" when any of its hours is estimated, reset or glitch; "missing" when
# none has a value.
DayQuality = Literal["measured", "estimated", "missing"]
DeviceState = Literal["online", "offline", "unknown"]
Unit = Literal["kWh"]


class HourValue(msgspec.Struct, kw_only=True):
    hour: datetime  # the hour's start, in the user's time zone
    energy_kwh: float | None
    quality: HourQuality
    readings: int


class HourlyDay(msgspec.Struct, kw_only=True):
    """One local day: 23, 24 or 25 hourly values in order."""

    device_id: uuid.UUID
    date: date
    time_zone: str
    unit: Unit = "kWh"
    hours_in_day: int
    total_kwh: float
    missing_hours: int
    flagged_hours: int  # estimated, reset or glitch
    max_hourly_kwh: float  # the device's alert limit, for the chart's limit line
    hours: list[HourValue]


class DayValue(msgspec.Struct, kw_only=True):
    date: date
    energy_kwh: float | None
    quality: DayQuality
    hours_in_day: int
    hours_with_data: int
    flagged_hours: int
    peak_hour_kwh: float | None


class PeakDay(msgspec.Struct, kw_only=True):
    date: date
    energy_kwh: float


class PeakHour(msgspec.Struct, kw_only=True):
    hour: datetime
    energy_kwh: float


class DailyRange(msgspec.Struct, kw_only=True):
    """Local calendar days ``from``…``to`` (both included), each the sum of its hours."""

    device_id: uuid.UUID
    from_: date = msgspec.field(name="from")
    to: date
    time_zone: str
    unit: Unit = "kWh"
    total_kwh: float
    peak_day: PeakDay | None
    peak_hour: PeakHour | None
    max_hourly_kwh: float
    days: list[DayValue]


class ReadingOut(msgspec.Struct, kw_only=True):
    ts: datetime
    energy_kwh: float  # the meter's cumulative register
    power_w: float | None
    seq: int | None


class ReadingsPage(msgspec.Struct, kw_only=True):
    """Raw readings in time order; when ``next_after`` is set, pass it as ``after`` for more."""

    device_id: uuid.UUID
    from_: datetime = msgspec.field(name="from")
    to: datetime
    time_zone: str
    unit: Unit = "kWh"
    limit: int
    count: int
    next_after: datetime | None
    readings: list[ReadingOut]


class DeviceLive(msgspec.Struct, kw_only=True):
    """A device on the client's dashboard and in the fleet view: what the live events update."""

    id: uuid.UUID
    name: str
    owner_username: str | None
    max_hourly_kwh: float
    state: DeviceState
    since: datetime | None
    last_ts: datetime | None
    last_energy_kwh: float | None
    last_power_w: float | None
    hour: datetime  # the current UTC clock hour
    hour_kwh: float | None
    hour_quality: str | None
    today_kwh: float | None

    @property
    def hour_share(self) -> float:
        """The current hour against the limit, 0…1 (for the bar)."""
        return min(1.0, (self.hour_kwh or 0.0) / self.max_hourly_kwh)


class FleetSummary(msgspec.Struct, kw_only=True):
    day: date
    time_zone: str
    online: int
    offline: int
    unknown: int
    readings_last_minute: int
    open_alerts: int
    devices: list[DeviceLive]  # by today's energy, largest first

    @property
    def readings_per_s(self) -> float:
        return self.readings_last_minute / 60

    @property
    def top(self) -> list[DeviceLive]:
        return [d for d in self.devices if d.today_kwh][:10]
