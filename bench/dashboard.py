"""Dashboard query benchmark: a fleet's year of 10-minute readings, the portal over real HTTP.

What it builds (sizes are flags):
  - ``--meters`` devices (default 1,000), one client in Europe/Bucharest owning them all;
  - ``--days`` days (default 365, from local 1 January) of raw 10-minute readings for every
    meter — 52.6 million rows at full size — generated in PostgreSQL in time order (a month
    per statement), as the hub would have stored them. Each register follows a closed form
    with a daily shape and a per-meter scale, so it is monotonic;
  - the ``hourly_energy`` rollup of exactly those readings, by the rule the hub applies (each
    10-minute delta belongs to the hour of its later reading; the first reading is the
    baseline), also in SQL: the hub's rollup of 52 million readings would time the hub, not
    the dashboards.
Then it starts the portal as users run it (``python -m portal``), signs in as the client and
times sequential authenticated requests (keep-alive) to:
  day    GET /api/v1/devices/{id}/consumption/hourly?date=…           (24 values)
  month  GET /api/v1/devices/{id}/consumption/daily?from=…&to=…       (a calendar month)
  year   GET /api/v1/devices/{id}/consumption/daily?from=…-01-01&to=…-12-31
each for a random meter and a random day or month. Targets (plain PostgreSQL): day p95 ≤ 20 ms,
year p95 ≤ 50 ms.

    uv run python bench/dashboard.py [--meters 1000] [--days 365] [--requests 300]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.kit import percentile, services
from devkit.live_portal import LivePortal
from portal.auth.passwords import hash_password
from portal.settings import PortalSettings

YEAR = 2025
TZ = "Europe/Bucharest"
TARGETS = {"day": 20.0, "year": 50.0}


def say(message: str) -> None:
    print(message, flush=True)


# A meter's register at H hours after the start: scale × (0.6 H + 0.4 ∫(1 + sin(2πh/24)) dh),
# monotonic (its rate is at least 0.6 × scale kWh/h) with a daily peak in the afternoon.
REGISTER = "1000 + b.scale * (0.6 * {h} + 0.4 * ({h} + 12 / pi() * (1 - cos(2 * pi() * {h} / 24))))"


def load(dsn: str, meters: int, days: int) -> None:
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
        conn.execute(
            "CREATE TEMP TABLE bench_scale AS SELECT id, 0.5 + random() AS scale FROM devices"
        )
        # The year in local time: from local midnight on 1 January.
        lo = conn.execute(f"SELECT '{YEAR}-01-01'::timestamp AT TIME ZONE %s", (TZ,)).fetchone()
        assert lo is not None
        start, end = lo[0], lo[0] + timedelta(days=days)
        hours_since = "extract(epoch FROM {t} - %(lo)s) / 3600.0"
        chunk, t0 = timedelta(days=30), time.perf_counter()
        for k, a in enumerate(_steps(start, end, chunk)):  # bounded transactions, progress
            b_ = min(a + chunk, end)
            conn.execute(
                "INSERT INTO readings (device_id, ts, energy_kwh, seq)"
                f" SELECT b.id, t, {REGISTER.format(h=hours_since.format(t='t'))},"
                "   (extract(epoch FROM t - %(lo)s) / 600)::bigint"
                " FROM generate_series(%(a)s::timestamptz, %(b)s::timestamptz"
                "   - interval '10 minutes', interval '10 minutes') t"
                " CROSS JOIN bench_scale b ORDER BY t, b.id",
                {"lo": start, "a": a, "b": b_},
            )
            done = (b_ - start) / (end - start)
            say(f"   readings: {done:4.0%} ({k + 1} × 30 days) {time.perf_counter() - t0:6.0f} s")
        # Hour h holds the deltas ending at h:00 … h:50: E(h:50) − E(h − 0:10), and the first
        # hour starts from the baseline reading at `lo` instead.
        t0 = time.perf_counter()
        last = "(" + hours_since.format(t="(h + interval '50 minutes')") + ")"
        first = "(" + hours_since.format(t="greatest(h - interval '10 minutes', %(lo)s)") + ")"
        conn.execute(
            "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
            f" SELECT b.id, h, ({REGISTER.format(h=last)}) - ({REGISTER.format(h=first)}),"
            "   'measured', 6"
            " FROM generate_series(%(lo)s::timestamptz, %(end)s::timestamptz - interval '1 hour',"
            "   interval '1 hour') h CROSS JOIN bench_scale b ORDER BY h, b.id",
            {"lo": start, "end": end},
        )
        say(f"   hourly_energy rolled up in {time.perf_counter() - t0:.0f} s")
        check = conn.execute(
            "SELECT (SELECT sum(energy_kwh) FROM hourly_energy WHERE device_id = d.id),"
            " (SELECT max(energy_kwh) - min(energy_kwh) FROM readings WHERE device_id = d.id)"
            " FROM devices d LIMIT 1"
        ).fetchone()
        assert check is not None and abs(check[0] - check[1]) < 1e-6 * check[1], check
        say(f"   check: one meter's hours add up to its register's rise ({check[1]:,.1f} kWh)")
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) hourly_energy")
        conn.execute("VACUUM (ANALYZE) readings")
        say(f"   vacuum + analyze in {time.perf_counter() - t0:.0f} s")


def _steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out = []
    while start < end:
        out.append(start)
        start += step
    return out


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
    ap.add_argument("--meters", type=int, default=1000, help="devices")
    ap.add_argument("--days", type=int, default=365, help="days of 10-minute readings")
    ap.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    args = ap.parse_args()

    with services() as svc:
        rows = args.meters * args.days * 144
        say(f"== {args.meters} meters × {args.days} days of {YEAR}: {rows:,} readings")
        t0 = time.perf_counter()
        load(svc.dsn, args.meters, args.days)
        say(f"   loaded in {time.perf_counter() - t0:.0f} s")
        with psycopg.connect(svc.dsn) as conn:
            devices = [str(r[0]) for r in conn.execute("SELECT id FROM devices").fetchall()]
            for table in ("readings", "hourly_energy"):
                size = conn.execute(
                    "SELECT pg_size_pretty(pg_total_relation_size(%s::regclass))", (table,)
                ).fetchone()
                assert size is not None
                say(f"   {table} with indexes: {size[0]}")
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
