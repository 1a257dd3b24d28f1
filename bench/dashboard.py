"""Dashboard query benchmark: a year of hourly energy per meter, the portal over real HTTP.

What it builds (sizes are flags):
  - ``--meters`` devices (default 200; ``--meters 1000`` is the full-size fleet), one client
    in Europe/Bucharest owning them all;
  - a year of ``hourly_energy`` for every meter, generated in PostgreSQL (INSERT … SELECT over
    generate_series) in time order — hour by hour across the fleet, the physical layout the hub's
    rollups produce — about 1% of hours flagged ``estimated``. The charts read only this table,
    so 52 million raw 10-minute readings (1,000 meters × a year) would add hours of loading and
    change nothing measured here;
  - ``--raw-days`` days of raw 10-minute readings for every meter (the readings endpoint's data).

Then it starts the portal as users run it (``python -m portal``), signs in as the client and
times sequential authenticated requests (keep-alive) to:
  day    GET /api/v1/devices/{id}/consumption/hourly?date=…           (24 values)
  month  GET /api/v1/devices/{id}/consumption/daily?from=…&to=…       (a calendar month)
  year   GET /api/v1/devices/{id}/consumption/daily?from=…-01-01&to=…-12-31
each for a random meter and a random day or month. Targets (plain PostgreSQL): day p95 ≤ 20 ms,
year p95 ≤ 50 ms.

    uv run python bench/dashboard.py [--meters 200] [--requests 300] [--raw-days 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.common import percentile, services
from portal.auth.passwords import hash_password
from portal.settings import PortalSettings
from tests.e2e.live_portal import LivePortal

YEAR = 2025
TZ = "Europe/Bucharest"
TARGETS = {"day": 20.0, "year": 50.0}


def say(message: str) -> None:
    print(message, flush=True)


def load(dsn: str, meters: int, raw_days: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (username, role, password_hash, time_zone)"
            " VALUES ('bench', 'client', %s, %s) RETURNING id",
            (hash_password("bench-password"), TZ),
        ).fetchone()
        assert user is not None
        conn.execute(
            "INSERT INTO devices (name, max_hourly_kwh, owner_id)"
            " SELECT 'meter ' || k, 5, %s FROM generate_series(1, %s) k",
            (user[0], meters),
        )
        # The year in local time: from local midnight on 1 January to local midnight a year on.
        lo = conn.execute(f"SELECT '{YEAR}-01-01'::timestamp AT TIME ZONE %s", (TZ,)).fetchone()
        assert lo is not None
        start = lo[0]
        for month in range(12):  # a month per statement: progress, and bounded transactions
            t0 = time.perf_counter()
            conn.execute(
                "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
                " SELECT d.id, h,"
                "   round((0.3 + 0.9 * (1 + sin(extract(hour FROM h) / 24.0 * 2 * pi())) / 2"
                "          + random() * 0.4)::numeric, 3)::float8,"
                "   CASE WHEN random() < 0.01 THEN 'estimated' ELSE 'measured' END, 6"
                " FROM generate_series(%(lo)s::timestamptz + make_interval(months => %(m)s),"
                "                      %(lo)s::timestamptz + make_interval(months => %(m)s + 1)"
                "                        - interval '1 hour', interval '1 hour') h"
                " CROSS JOIN devices d ORDER BY h, d.id",
                {"lo": start, "m": month},
            )
            say(f"   hourly_energy: month {month + 1:2d}/12 in {time.perf_counter() - t0:.1f} s")
        if raw_days:
            t0 = time.perf_counter()
            conn.execute(
                "INSERT INTO readings (device_id, ts, energy_kwh, seq, power_w)"
                " SELECT d.id, t, 1000 + extract(epoch FROM t - %(lo)s) / 3600.0, 0, 800"
                " FROM generate_series(%(lo)s::timestamptz + interval '360 days',"
                "   %(lo)s::timestamptz + interval '360 days' + make_interval(days => %(n)s)"
                "   - interval '10 minutes', interval '10 minutes') t"
                " CROSS JOIN devices d ORDER BY t, d.id",
                {"lo": start, "n": raw_days},
            )
            say(
                f"   readings: {raw_days} days × {meters} meters"
                f" in {time.perf_counter() - t0:.1f} s"
            )
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) hourly_energy")
        conn.execute("VACUUM (ANALYZE) readings")
        say(f"   vacuum + analyze in {time.perf_counter() - t0:.1f} s")


def month_bounds(month: int) -> tuple[str, str]:
    first = date(YEAR, month, 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first.isoformat(), last.isoformat()


def measure(client: httpx.Client, devices: list[str], requests: int) -> dict[str, list[float]]:
    rng = random.Random(7)

    def day() -> str:
        when = date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))
        return f"/api/v1/devices/{rng.choice(devices)}/consumption/hourly?date={when}"

    def month() -> str:
        first, last = month_bounds(rng.randint(1, 12))
        return f"/api/v1/devices/{rng.choice(devices)}/consumption/daily?from={first}&to={last}"

    def year() -> str:
        return (
            f"/api/v1/devices/{rng.choice(devices)}/consumption/daily"
            f"?from={YEAR}-01-01&to={YEAR}-12-31"
        )

    timings: dict[str, list[float]] = {}
    for name, url in (("day", day), ("month", month), ("year", year)):
        for _ in range(20):  # warm-up: connections, plans, caches
            client.get(url()).raise_for_status()
        samples = []
        for _ in range(requests):
            target = url()
            t0 = time.perf_counter()
            response = client.get(target)
            samples.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
        timings[name] = samples
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=200, help="devices (1000 for the full fleet)")
    ap.add_argument("--raw-days", type=int, default=3, help="days of raw 10-minute readings")
    ap.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    args = ap.parse_args()

    with services() as svc:
        hours = args.meters * 8760
        say(f"== {args.meters} meters × {YEAR} ({hours:,} hourly_energy rows, generated in SQL)")
        t0 = time.perf_counter()
        load(svc.dsn, args.meters, args.raw_days)
        say(f"   loaded in {time.perf_counter() - t0:.0f} s")
        with psycopg.connect(svc.dsn) as conn:
            devices = [str(r[0]) for r in conn.execute("SELECT id FROM devices").fetchall()]
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('hourly_energy'))")
            say(f"   hourly_energy with indexes: {size.fetchone()[0]}")  # type: ignore[index]
        settings = PortalSettings(
            database_url=svc.dsn,
            jwt_secret="bench-" + "x" * 40,
            mqtt_username=svc.broker.portal_user,
            mqtt_password=svc.broker.portal_password,
            mqtt_host=svc.broker.host,
            mqtt_port=svc.broker.port,
        )
        log = Path(tempfile.mkdtemp(prefix="ems-bench-portal-")) / "portal.log"
        with LivePortal(settings, log) as portal, httpx.Client(base_url=portal.url) as client:
            login = client.post(
                "/api/v1/auth/login", json={"username": "bench", "password": "bench-password"}
            )
            login.raise_for_status()
            client.cookies.clear()
            client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            say(f"== {args.requests} sequential requests per endpoint, one keep-alive client")
            timings = measure(client, devices, args.requests)
        for name, samples in timings.items():
            p50, p95 = percentile(samples, 50), percentile(samples, 95)
            target = TARGETS.get(name)
            verdict = "" if target is None else f"  (target p95 ≤ {target:.0f} ms: "
            verdict += "" if target is None else ("met)" if p95 <= target else "MISSED)")
            say(
                f"   {name:5s}  p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {max(samples):6.1f} ms"
                + verdict
            )


if __name__ == "__main__":
    main()
