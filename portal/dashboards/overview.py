"""What the dashboards show first: each device's status, last reading, current hour and today.

The client's overview lists the devices ``DeviceService`` lets them see; the fleet view
(administrators) adds the counts. Every per-device figure is an index probe on a primary key
(readings by (device_id, ts), hourly_energy by (device_id, hour)), so the cost grows with the
number of devices shown, never with the length of their history.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.auth.schemas import CurrentUser
from portal.dashboards.schemas import DeviceLive, FleetSummary
from portal.dashboards.stored import shown
from portal.dashboards.timeframe import day_bounds, local_today, zone
from portal.devices.services import DeviceService

# Energy and power through ``shown``: whatever legacy rows hold, no sum overflows (stored.py).
_LIVE = f"""
SELECT d.id, d.name, u.username AS owner_username, d.max_hourly_kwh,
       coalesce(s.state, 'unknown') AS state, s.since,
       r.ts AS last_ts, {shown("r.energy_kwh")} AS last_energy_kwh,
       {shown("r.power_w")} AS last_power_w,
       {shown("h.energy_kwh")} AS hour_kwh, h.quality AS hour_quality, t.kwh AS today_kwh
FROM devices d
LEFT JOIN users u ON u.id = d.owner_id
LEFT JOIN device_status s ON s.device_id = d.id
LEFT JOIN LATERAL (
    SELECT ts, energy_kwh, power_w FROM readings WHERE device_id = d.id ORDER BY ts DESC LIMIT 1
) r ON true
LEFT JOIN hourly_energy h ON h.device_id = d.id AND h.hour = :hour
LEFT JOIN LATERAL (
    SELECT sum({shown("energy_kwh")}) AS kwh FROM hourly_energy
    WHERE device_id = d.id AND hour >= :lo AND hour < :hi
) t ON true
"""
_SOME = text(_LIVE + " WHERE d.id = ANY(:ids) ORDER BY d.name, d.id")
_ALL = text(_LIVE + " ORDER BY t.kwh DESC NULLS LAST, d.name, d.id")
# Readings stored with a timestamp in the last minute, counted per device through the primary
# key (a plain count over readings.ts would have no index to use on PostgreSQL without
# TimescaleDB). It is what meters measured, so a late store-and-forward flush is not counted.
_RECENT_READINGS = text(
    "SELECT coalesce(sum(c.n), 0) FROM devices d CROSS JOIN LATERAL ("
    " SELECT count(*) AS n FROM readings r"
    " WHERE r.device_id = d.id AND r.ts > now() - interval '1 minute') c"
)
_OPEN_ALERTS = text("SELECT count(*) FROM alerts WHERE status = 'open'")


def _live(row: Any, tz: ZoneInfo) -> DeviceLive:
    values = row._asdict()
    for key in ("since", "last_ts"):
        if values[key] is not None:
            values[key] = values[key].astimezone(tz)
    return DeviceLive(**values, hour=_current_hour())


def _current_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class OverviewService:
    def __init__(self, session: AsyncSession, actor: CurrentUser, devices: DeviceService) -> None:
        self.session = session
        self.actor = actor
        self.devices = devices
        self.tz = zone(actor.time_zone)

    def _params(self) -> dict[str, Any]:
        lo, hi = day_bounds(local_today(self.tz), self.tz)
        return {"hour": _current_hour(), "lo": lo, "hi": hi}

    async def my_devices(self) -> list[DeviceLive]:
        """The devices this user may see (DeviceService's rule), with their live figures."""
        ids: list[uuid.UUID] = [d.id for d in await self.devices.list_devices()]
        if not ids:
            return []
        rows = await self.session.execute(_SOME, {**self._params(), "ids": ids})
        return [_live(row, self.tz) for row in rows]

    async def device(self, device_id: uuid.UUID) -> DeviceLive:
        await self.devices.get(device_id)  # 404 unless visible to this user
        rows = await self.session.execute(_SOME, {**self._params(), "ids": [device_id]})
        return _live(rows.one(), self.tz)

    async def fleet(self) -> FleetSummary:
        """Administrators only (the page's guard): every device, by today's energy."""
        devices = [_live(row, self.tz) for row in await self.session.execute(_ALL, self._params())]
        recent = (await self.session.execute(_RECENT_READINGS)).scalar_one()
        open_alerts = (await self.session.execute(_OPEN_ALERTS)).scalar_one()
        return FleetSummary(
            day=local_today(self.tz),
            time_zone=self.tz.key,
            online=sum(d.state == "online" for d in devices),
            offline=sum(d.state == "offline" for d in devices),
            unknown=sum(d.state == "unknown" for d in devices),
            readings_last_minute=int(recent),
            open_alerts=int(open_alerts),
            devices=devices,
        )
