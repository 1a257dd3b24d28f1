"""Consumption API against a real PostgreSQL: local days with 23/25 hours, daily totals, raw
readings, CSV export, who may see what, and the 400s a caller gets for bad ranges."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.settings import PortalSettings
from tests.integration.test_portal_api import bearer, password_hash

TZ = "Europe/Bucharest"
SPRING = "2026-03-29"  # 03:00 → 04:00 local: 23 hours
AUTUMN = "2026-10-25"  # 04:00 → 03:00 local: 25 hours
H = timedelta(hours=1)


@dataclass
class Dash:
    client: TestClient[Any]
    dsn: str
    alice: dict[str, str]  # headers
    bob: dict[str, str]
    admin: dict[str, str]
    dev_a: str  # alice's
    dev_b: str  # bob's

    def get(self, who: dict[str, str], path: str, **params: Any) -> Any:
        return self.client.get(path.format(a=self.dev_a, b=self.dev_b), headers=who, params=params)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(self.alice, path, **params)
        assert response.status_code == 200, response.text
        return response.json()


def energy_at(hour: datetime) -> float:
    """A distinct, easily recomputed value per UTC hour."""
    return round(0.5 + (hour.day * 24 + hour.hour) % 17 * 0.125, 3)


def store_hours(dsn: str, device: str, first: datetime, last: datetime, **quality: str) -> None:
    """hourly_energy rows for every UTC hour first…last; ``quality`` maps ISO hours to flags."""
    rows = []
    hour = first
    while hour <= last:
        rows.append((device, hour, energy_at(hour), quality.get(hour.isoformat(), "measured"), 6))
        hour += H
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
            " VALUES (%s, %s, %s, %s, %s)",
            rows,
        )


@pytest.fixture
def dash(portal_settings: PortalSettings, portal_admin: tuple[str, str]) -> Iterator[Dash]:
    dsn = portal_settings.database_url
    ids: dict[str, str] = {}
    with psycopg.connect(dsn) as conn:
        for name, tz in (("alice", TZ), ("bob", "UTC")):
            row = conn.execute(
                "INSERT INTO users (username, role, password_hash, time_zone)"
                " VALUES (%s, 'client', %s, %s) RETURNING id",
                (name, password_hash(f"{name}-password"), tz),
            ).fetchone()
            assert row is not None
            ids[name] = str(row[0])
        for key, owner in (("dev_a", ids["alice"]), ("dev_b", ids["bob"])):
            row = conn.execute(
                "INSERT INTO devices (name, max_hourly_kwh, owner_id) VALUES (%s, 2.5, %s)"
                " RETURNING id",
                (f"meter of {key}", owner),
            ).fetchone()
            assert row is not None
            ids[key] = str(row[0])
        root = conn.execute("SELECT id FROM users WHERE username = %s", (portal_admin[0],))
        ids["root"] = str(root.fetchone()[0])  # type: ignore[index]
    with TestClient(create_app(portal_settings)) as client:
        yield Dash(
            client,
            dsn,
            alice=bearer(portal_settings, ids["alice"], "client"),
            bob=bearer(portal_settings, ids["bob"], "client"),
            admin=bearer(portal_settings, ids["root"], "admin"),
            dev_a=ids["dev_a"],
            dev_b=ids["dev_b"],
        )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("day", "hours", "first", "repeated_or_skipped"),
    [
        (SPRING, 23, "2026-03-29T00:00:00+02:00", "2026-03-29T04:00:00+03:00"),
        (AUTUMN, 25, "2026-10-25T00:00:00+03:00", "2026-10-25T03:00:00+02:00"),
        ("2026-06-15", 24, "2026-06-15T00:00:00+03:00", "2026-06-15T23:00:00+03:00"),
    ],
)
def test_a_local_day_has_one_value_per_local_hour_adding_up_to_its_total(
    dash: Dash, day: str, hours: int, first: str, repeated_or_skipped: str
) -> None:
    start = utc(first)
    store_hours(dash.dsn, dash.dev_a, start - 3 * H, start + 28 * H)
    body = dash.ok("/api/v1/devices/{a}/consumption/hourly", date=day)
    assert body["date"] == day and body["time_zone"] == TZ and body["unit"] == "kWh"
    assert body["hours_in_day"] == hours == len(body["hours"])
    stamps = [h["hour"] for h in body["hours"]]
    assert stamps[0] == first
    assert repeated_or_skipped in stamps
    instants = [utc(s) for s in stamps]
    assert instants == [start + k * H for k in range(hours)]  # consecutive UTC hours
    assert [h["energy_kwh"] for h in body["hours"]] == [energy_at(t) for t in instants]
    assert sum(h["energy_kwh"] for h in body["hours"]) == pytest.approx(body["total_kwh"])
    assert body["missing_hours"] == body["flagged_hours"] == 0
    if day == AUTUMN:  # the repeated 03:00, once in summer time and once in winter time
        assert "2026-10-25T03:00:00+03:00" in stamps
    if day == SPRING:
        assert not any(s.startswith("2026-03-29T03:") for s in stamps)


def test_missing_hours_are_null_and_flags_come_through(dash: Dash) -> None:
    start = utc("2026-03-29T00:00:00+02:00")
    estimated = start + 5 * H
    store_hours(dash.dsn, dash.dev_a, start, start + 9 * H, **{estimated.isoformat(): "estimated"})
    store_hours(dash.dsn, dash.dev_a, start + 12 * H, start + 22 * H)  # 10:00 and 11:00 missing
    body = dash.ok("/api/v1/devices/{a}/consumption/hourly", date=SPRING)
    by_hour = {utc(h["hour"]): h for h in body["hours"]}
    assert by_hour[estimated]["quality"] == "estimated"
    for gap in (start + 10 * H, start + 11 * H):
        assert by_hour[gap] == {
            "hour": by_hour[gap]["hour"],
            "energy_kwh": None,
            "quality": "missing",
            "readings": 0,
        }
    assert body["missing_hours"] == 2 and body["flagged_hours"] == 1
    assert sum(h["energy_kwh"] or 0 for h in body["hours"]) == pytest.approx(body["total_kwh"])


def test_daily_totals_are_the_sums_of_their_local_hours(dash: Dash) -> None:
    first = utc("2026-10-23T00:00:00+03:00")
    flag = (first + 40 * H).isoformat()
    store_hours(dash.dsn, dash.dev_a, first - 5 * H, first + 5 * 24 * H, **{flag: "estimated"})
    body = dash.ok("/api/v1/devices/{a}/consumption/daily", **{"from": "2026-10-23", "to": AUTUMN})
    assert [d["date"] for d in body["days"]] == ["2026-10-23", "2026-10-24", AUTUMN]
    assert [d["hours_in_day"] for d in body["days"]] == [24, 24, 25]
    assert [d["quality"] for d in body["days"]] == ["measured", "estimated", "measured"]
    for day in body["days"]:
        hourly = dash.ok("/api/v1/devices/{a}/consumption/hourly", date=day["date"])
        assert day["energy_kwh"] == pytest.approx(hourly["total_kwh"])
        assert day["hours_with_data"] == day["hours_in_day"]
        assert day["peak_hour_kwh"] == max(h["energy_kwh"] for h in hourly["hours"])
    assert body["total_kwh"] == pytest.approx(sum(d["energy_kwh"] for d in body["days"]))
    best = max(body["days"], key=lambda d: d["energy_kwh"])
    assert body["peak_day"] == {"date": best["date"], "energy_kwh": best["energy_kwh"]}
    assert body["peak_hour"]["energy_kwh"] == max(d["peak_hour_kwh"] for d in body["days"])
    empty = dash.ok(
        "/api/v1/devices/{a}/consumption/daily", **{"from": "2025-01-01", "to": "2025-01-02"}
    )
    assert empty["total_kwh"] == 0 and empty["peak_day"] is None
    assert [d["quality"] for d in empty["days"]] == ["missing", "missing"]


def store_readings(dsn: str, device: str, first: datetime, n: int) -> None:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (device_id, ts, energy_kwh, seq, power_w)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    device,
                    first + k * timedelta(minutes=10),
                    100 + k * 0.25,
                    k,
                    1500.0 if k % 2 else None,
                )
                for k in range(n)
            ],
        )


def test_readings_are_paged_in_time_order(dash: Dash) -> None:
    first = utc("2026-10-25T01:00:00+03:00")
    store_readings(dash.dsn, dash.dev_a, first, 25)
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"from": AUTUMN, "to": AUTUMN, "limit": 10}
    while True:
        page = dash.ok("/api/v1/devices/{a}/readings", **params)
        seen += page["readings"]
        if page["next_after"] is None:
            break
        assert page["count"] == 10
        params["after"] = page["next_after"]
    assert [r["seq"] for r in seen] == list(range(25))
    assert utc(seen[0]["ts"]) == first and seen[0]["ts"].endswith("+03:00")
    assert seen[-1]["ts"].endswith("+02:00")  # after the clocks went back
    late = dash.ok("/api/v1/devices/{a}/readings", **{"from": "2026-10-25T03:30:00+02:00"})
    assert [utc(r["ts"]) for r in late["readings"]] == [
        utc(r["ts"]) for r in seen if utc(r["ts"]) >= utc("2026-10-25T03:30:00+02:00")
    ]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_hourly_csv_has_offsets_unit_and_quality_and_matches_the_api(dash: Dash) -> None:
    start = utc("2026-10-25T00:00:00+03:00")
    flag = (start + 2 * H).isoformat()
    store_hours(dash.dsn, dash.dev_a, start, start + 20 * H, **{flag: "estimated"})
    response = dash.get(
        dash.alice, "/api/v1/devices/{a}/export.csv", **{"from": AUTUMN, "to": AUTUMN}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = parse_csv(response.text)
    api = dash.ok("/api/v1/devices/{a}/consumption/hourly", date=AUTUMN)["hours"]
    assert len(rows) == len(api) == 25
    for row, hour in zip(rows, api, strict=True):
        assert row["device_id"] == dash.dev_a and row["unit"] == "kWh"
        assert utc(row["hour_start"]) == utc(hour["hour"])
        assert row["hour_start"][-6:] in ("+03:00", "+02:00")
        assert utc(row["hour_end"]) - utc(row["hour_start"]) == H
        assert row["quality"] == hour["quality"]
        assert (float(row["energy"]) if row["energy"] else None) == hour["energy_kwh"]
    assert {r["quality"] for r in rows} == {"measured", "estimated", "missing"}


def test_readings_csv_parses_and_matches_the_api(dash: Dash) -> None:
    store_readings(dash.dsn, dash.dev_a, utc("2026-03-29T01:00:00+02:00"), 30)
    response = dash.get(
        dash.alice,
        "/api/v1/devices/{a}/export.csv",
        **{"from": SPRING, "to": SPRING, "kind": "readings"},
    )
    assert response.status_code == 200, response.text
    rows = parse_csv(response.text)
    api = dash.ok("/api/v1/devices/{a}/readings", **{"from": SPRING, "to": SPRING})["readings"]
    assert len(rows) == len(api) == 30
    for row, reading in zip(rows, api, strict=True):
        assert utc(row["ts"]) == utc(reading["ts"]) and row["ts"][-6:] in ("+02:00", "+03:00")
        assert float(row["energy"]) == reading["energy_kwh"]
        assert row["unit"] == "kWh" and row["quality"] == "measured"
        assert (float(row["power_w"]) if row["power_w"] else None) == reading["power_w"]
        assert int(row["seq"]) == reading["seq"]


ENDPOINTS = [
    ("/api/v1/devices/{d}/consumption/hourly", {"date": SPRING}),
    ("/api/v1/devices/{d}/consumption/daily", {"from": SPRING, "to": SPRING}),
    ("/api/v1/devices/{d}/readings", {}),
    ("/api/v1/devices/{d}/export.csv", {}),
]


@pytest.mark.parametrize(("path", "params"), ENDPOINTS)
def test_only_the_owner_and_administrators_see_a_device(
    dash: Dash, path: str, params: dict[str, str]
) -> None:
    def status(who: dict[str, str], device: str) -> int:
        url = path.format(d=device)
        return int(dash.client.get(url, headers=who, params=params).status_code)

    assert status(dash.alice, dash.dev_a) == 200
    assert status(dash.admin, dash.dev_a) == 200
    assert status(dash.bob, dash.dev_a) == 404  # not "forbidden": it does not exist for bob
    assert status(dash.alice, str(uuid.uuid4())) == 404
    assert status({}, dash.dev_a) == 401
    other = dash.client.get(path.format(d=dash.dev_a), headers=dash.bob, params=params)
    assert "not found" in other.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        # What the document rules out (a format, a bound): 400.
        ("consumption/hourly", {"date": "2026-02-30"}, 400, "is not a date"),
        ("consumption/hourly", {"date": "29.03.2026"}, 400, "is not a date"),
        ("readings", {"from": "2026-03-01T10:00:00"}, 400, "with an offset"),
        ("readings", {"limit": "10001"}, 400, "limit"),
        ("export.csv", {"kind": "minutely"}, 400, "kind"),
        # Well-formed values that do not make a range the portal serves: 422.
        ("consumption/daily", {"from": "2026-03-10", "to": "2026-03-01"}, 422, "is after to"),
        ("consumption/daily", {"from": "2020-01-01", "to": "2026-01-01"}, 422, "at most 1098"),
        ("consumption/daily", {"from": "1900-01-01", "to": "1900-01-02"}, 422, "outside"),
        ("readings", {"from": "2024-01-01", "to": "2026-01-01"}, 422, "longer than 366 days"),
        ("readings", {"from": SPRING, "to": "2026-03-28"}, 422, "is not before"),
        ("export.csv", {"from": "2025-01-01", "to": "2026-03-01", "kind": "readings"}, 422, "366"),
    ],
)
def test_bad_ranges_are_refused_with_a_message(
    dash: Dash, path: str, params: dict[str, str], status: int, message: str
) -> None:
    response = dash.get(dash.alice, "/api/v1/devices/{a}/" + path, **params)
    assert response.status_code == status, response.text
    assert response.json() == {"status_code": status, "detail": response.json()["detail"]}
    assert message in response.json()["detail"]
