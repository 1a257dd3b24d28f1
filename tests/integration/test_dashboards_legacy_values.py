"""Rows stored before the hub bounded its input (1e308, Infinity, NaN) cannot make a consumption
endpoint or a dashboard fail: every answer is a 200 whose body fits its schema (issue 13, 5)."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import psycopg
import pytest

from portal.dashboards.schemas import DailyRange, HourlyDay, ReadingsPage
from portal.dashboards.stored import SHOWN_MAX
from tests.integration.test_dashboards_api import TZ, Dash, dash  # noqa: F401 - the fixture
from tests.integration.test_portal_pages import sign_in

DAY = "2026-06-15"  # 00:00 local = 21:00 UTC the day before (Bucharest, summer)
MIDNIGHT = datetime(2026, 6, 14, 21, tzinfo=UTC)
H = timedelta(hours=1)
HUGE = ["1e308", "1.7976931348623157e308", "Infinity", "1e308", "NaN"]


def store_legacy(dsn: str, device: str, hours: list[datetime]) -> None:
    """Hours and readings as an old hub could have left them, and worse."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
            " VALUES (%s, %s, %s::float8, 'measured', 6) ON CONFLICT DO NOTHING",
            [(device, h, HUGE[k % len(HUGE)]) for k, h in enumerate(hours)],
        )
        cur.executemany(
            "INSERT INTO readings (device_id, ts, energy_kwh, power_w)"
            " VALUES (%s, %s, %s::float8, %s::float8) ON CONFLICT DO NOTHING",
            [(device, h, HUGE[k % len(HUGE)], HUGE[-k % len(HUGE)]) for k, h in enumerate(hours)],
        )


def finite_numbers(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    return True


def today_hours() -> list[datetime]:
    """Two hours of the user's today, whatever the time: the sum over today must add them."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    last_of_day = (now + H).astimezone(ZoneInfo(TZ)).date() != now.astimezone(ZoneInfo(TZ)).date()
    return [now - H, now] if last_of_day else [now, now + H]


def test_extreme_stored_values_leave_every_endpoint_answering(
    dash: Dash,  # noqa: F811 - the fixture imported above
    portal_admin: tuple[str, str],
) -> None:
    hours = [MIDNIGHT + k * H for k in range(24)]
    store_legacy(dash.dsn, dash.dev_a, hours + today_hours())

    hourly = dash.get(dash.alice, "/api/v1/devices/{a}/consumption/hourly", date=DAY)
    assert hourly.status_code == 200, hourly.text
    day = msgspec.json.decode(hourly.content, type=HourlyDay)
    assert [h.energy_kwh for h in day.hours] == [SHOWN_MAX] * 24  # 1e308, Infinity, NaN alike
    assert day.total_kwh == pytest.approx(24 * SHOWN_MAX)

    for path, params, schema in (
        ("/api/v1/devices/{a}/consumption/daily", {"from": DAY, "to": DAY}, DailyRange),
        ("/api/v1/devices/{a}/consumption/daily", {}, DailyRange),  # the default: to today
        ("/api/v1/devices/{a}/readings", {"from": DAY, "to": DAY}, ReadingsPage),
    ):
        response = dash.get(dash.alice, path, **params)
        assert response.status_code == 200, (path, params, response.text)
        msgspec.json.decode(response.content, type=schema)  # fits the schema: no null total
        assert finite_numbers(response.json()), response.text

    for kind in ("hourly", "readings"):
        export = dash.get(dash.alice, "/api/v1/devices/{a}/export.csv", kind=kind, **{"from": DAY})
        assert export.status_code == 200, export.text
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert len(rows) >= 24
        for row in rows:
            for field in ("energy", "power_w"):
                if row.get(field):
                    assert math.isfinite(float(row[field])), row

    sign_in(dash.client, "alice", "alice-password")
    for page in ("/dashboard/", f"/dashboard/devices/{dash.dev_a}?date={DAY}"):
        response = dash.client.get(page)
        assert response.status_code == 200, (page, response.text[:500])
    sign_in(dash.client, *portal_admin)
    fleet = dash.client.get("/admin/fleet/")
    assert fleet.status_code == 200, fleet.text[:500]
