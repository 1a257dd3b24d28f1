"""Consumption and readings of one device, for the user's local days.

Every method first asks ``DeviceService.get`` for the device, which applies the ownership rule
in its query (another client's device is a 404), then reads ``hourly_energy`` or ``readings``
through their (device_id, hour|ts) primary keys: one index range scan per request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.schemas import CurrentUser
from portal.dashboards.schemas import (
    DailyRange,
    DayValue,
    HourlyDay,
    HourValue,
    PeakDay,
    PeakHour,
    ReadingOut,
    ReadingsPage,
)
from portal.dashboards.stored import HOURS, READINGS_PAGE, shown
from portal.dashboards.timeframe import (
    HOUR,
    MAX_DAILY_DAYS,
    MAX_READINGS_DAYS,
    day_hours,
    day_range,
    day_starts,
    instant_range,
    local_today,
    parse_date,
    parse_instant,
    zone,
)
from portal.devices.schemas import DeviceOut
from portal.devices.services import DeviceService
from portal.errors import BadRequest

MAX_READINGS_PAGE = 10_000

# Energy and power through ``shown``: whatever legacy rows hold, no sum overflows (stored.py).
_ENERGY = shown("energy_kwh")
# One row per local day that has data; the caller fills in the days without any. (Finding
# each day's peak hour here too would double the query's cost; only the range's one is shown,
# so _PEAK_HOUR looks it up within the peak day afterwards.)
_DAYS = text(
    f"SELECT (hour AT TIME ZONE :tz)::date AS day, sum({_ENERGY}) AS kwh, count(*) AS n,"
    f" count(*) FILTER (WHERE quality <> 'measured') AS flagged, max({_ENERGY}) AS peak_kwh"
    " FROM hourly_energy WHERE device_id = :device_id AND hour >= :lo AND hour < :hi"
    " GROUP BY 1 ORDER BY 1"
)
_PEAK_HOUR = text(
    f"SELECT hour, {_ENERGY} AS energy_kwh FROM hourly_energy"
    " WHERE device_id = :device_id AND hour >= :lo AND hour < :hi"
    f" ORDER BY {_ENERGY} DESC, hour LIMIT 1"
)


def hour_value(tz: ZoneInfo, hour: datetime, row: Any | None) -> HourValue:
    local = hour.astimezone(tz)
    if row is None:
        return HourValue(hour=local, energy_kwh=None, quality="missing", readings=0)
    return HourValue(
        hour=local, energy_kwh=row.energy_kwh, quality=row.quality, readings=row.readings
    )


class ConsumptionService:
    def __init__(self, session: AsyncSession, actor: CurrentUser, devices: DeviceService) -> None:
        self.session = session
        self.devices = devices
        self.tz = zone(actor.time_zone)

    async def device(self, device_id: uuid.UUID) -> DeviceOut:
        return await self.devices.get(device_id)

    async def stored_hours(
        self, device_id: uuid.UUID, lo: datetime, hi: datetime
    ) -> dict[datetime, Any]:
        rows = await self.session.execute(HOURS, {"device_id": device_id, "lo": lo, "hi": hi})
        return {row.hour.astimezone(UTC): row for row in rows}

    async def hourly(self, device_id: uuid.UUID, raw_date: str | None) -> HourlyDay:
        device = await self.device(device_id)
        day = parse_date("date", raw_date) if raw_date else local_today(self.tz)
        hours = day_hours(day, self.tz)
        stored = await self.stored_hours(device_id, hours[0], hours[-1] + HOUR)
        values = [hour_value(self.tz, h, stored.get(h)) for h in hours]
        return HourlyDay(
            device_id=device_id,
            date=day,
            time_zone=self.tz.key,
            hours_in_day=len(values),
            total_kwh=sum(v.energy_kwh for v in values if v.energy_kwh is not None),
            missing_hours=sum(v.quality == "missing" for v in values),
            flagged_hours=sum(v.quality not in ("measured", "missing") for v in values),
            max_hourly_kwh=device.max_hourly_kwh,
            hours=values,
        )

    async def daily(
        self, device_id: uuid.UUID, raw_from: str | None, raw_to: str | None
    ) -> DailyRange:
        device = await self.device(device_id)
        span = day_range(raw_from, raw_to, self.tz, max_days=MAX_DAILY_DAYS)
        starts = day_starts(span.first, span.days, self.tz)
        params = {"device_id": device_id, "lo": starts[0], "hi": starts[-1], "tz": self.tz.key}
        found = {row.day: row for row in await self.session.execute(_DAYS, params)}
        days = [
            _day_value(span.first + timedelta(days=k), starts[k + 1] - starts[k], found)
            for k in range(span.days)
        ]
        measured = [(k, d) for k, d in enumerate(days) if d.energy_kwh is not None]
        top = max(measured, key=lambda kd: kd[1].energy_kwh or 0.0, default=None)
        peaky = max(measured, key=lambda kd: kd[1].peak_hour_kwh or 0.0, default=None)
        peak_hour = None
        if peaky is not None:
            k = peaky[0]
            bounds = {"device_id": device_id, "lo": starts[k], "hi": starts[k + 1]}
            # first(): the hub may be rewriting that day's hours between the two queries.
            row = (await self.session.execute(_PEAK_HOUR, bounds)).first()
            if row is not None:
                peak_hour = PeakHour(hour=row.hour.astimezone(self.tz), energy_kwh=row.energy_kwh)
        return DailyRange(
            device_id=device_id,
            from_=span.first,
            to=span.last,
            time_zone=self.tz.key,
            total_kwh=sum(d.energy_kwh or 0.0 for _, d in measured),
            peak_day=(
                PeakDay(date=top[1].date, energy_kwh=top[1].energy_kwh or 0.0) if top else None
            ),
            peak_hour=peak_hour,
            max_hourly_kwh=device.max_hourly_kwh,
            days=days,
        )

    async def readings(
        self,
        device_id: uuid.UUID,
        raw_from: str | None,
        raw_to: str | None,
        raw_after: str | None,
        limit: int,
    ) -> ReadingsPage:
        await self.device(device_id)
        if not 1 <= limit <= MAX_READINGS_PAGE:
            raise BadRequest(f"limit: {limit} is outside 1 … {MAX_READINGS_PAGE}")
        span = instant_range(raw_from, raw_to, self.tz, max_days=MAX_READINGS_DAYS)
        lo = span.start
        if raw_after:
            # Keyset paging: readings are unique per (device_id, ts), so "after the last ts"
            # never skips or repeats one, however the table changes between pages.
            lo = max(lo, parse_instant("after", raw_after, self.tz, end=False) + _TICK)
        params = {"device_id": device_id, "lo": lo, "hi": span.end, "limit": limit + 1}
        rows = list(await self.session.execute(READINGS_PAGE, params))
        more = len(rows) > limit
        items = [
            ReadingOut(
                ts=r.ts.astimezone(self.tz), energy_kwh=r.energy_kwh, power_w=r.power_w, seq=r.seq
            )
            for r in rows[:limit]
        ]
        return ReadingsPage(
            device_id=device_id,
            from_=span.start.astimezone(self.tz),
            to=span.end.astimezone(self.tz),
            time_zone=self.tz.key,
            limit=limit,
            count=len(items),
            next_after=items[-1].ts if more else None,
            readings=items,
        )


_TICK = timedelta(microseconds=1)  # PostgreSQL's timestamp resolution


def _day_value(day: date, length: timedelta, found: dict[date, Any]) -> DayValue:
    row = found.get(day)
    in_day = int(length / HOUR)
    if row is None:
        return DayValue(
            date=day,
            energy_kwh=None,
            quality="missing",
            hours_in_day=in_day,
            hours_with_data=0,
            flagged_hours=0,
            peak_hour_kwh=None,
        )
    return DayValue(
        date=day,
        energy_kwh=row.kwh,
        quality="estimated" if row.flagged else "measured",
        hours_in_day=in_day,
        hours_with_data=row.n,
        flagged_hours=row.flagged,
        peak_hour_kwh=row.peak_kwh,
    )
