"""`ems up --demo`: a demo client, a few simulated meters owned by it, and their history.

The first time: a client user `demo` (random password), devices with meter credentials, a
fleet file and two days of backfilled readings (ems-sim at high speed). Every time: the fleet
runs live (a reading a minute), continuing each meter's register from its saved state. The
demo logins are kept in `<EMS_HOME>/demo/logins.json` (mode 600) so a later `make run` can
show them again; nothing here is used outside the demo.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from device_sim.config import BrokerOptions, MeterEntry
from device_sim.config_writer import write_fleet
from ems.broker import ADMIN_USER
from portal.auth.passwords import generate_password, hash_password
from portal.broker_admin import BrokerAdmin, new_meter_password

if TYPE_CHECKING:
    from ems.stack import Stack

DEMO_USER = "demo"
NAMES = ("Kitchen", "Heat pump", "Workshop", "Flat 2", "Garage", "Office", "Bakery", "Studio")
BACKFILL_DAYS = 2
BACKFILL_SECONDS = 15  # real seconds to replay the backfill in


def _private_json(path: Path, data: dict[str, str]) -> None:
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


def _provision(stack: Stack, home: Path, portal_password: str, meters: int) -> None:
    assert stack.pg is not None
    dsn = stack.pg.dsn("ems")
    password = generate_password(9)
    entries: list[MeterEntry] = []
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, name, role, password_hash, time_zone)"
            " VALUES (%s, 'Demo household', 'client', %s, 'Europe/Bucharest')"
            " ON CONFLICT (lower(username)) DO UPDATE SET password_hash = excluded.password_hash"
            " RETURNING id",
            (DEMO_USER, hash_password(password)),
        ).fetchone()
        assert row is not None
        owner = row[0]
        for i in range(meters):
            device_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO devices (id, name, description, max_hourly_kwh, interval_s, owner_id)"
                " VALUES (%s, %s, 'demo meter', 1.5, 60, %s)",
                (device_id, NAMES[i % len(NAMES)], owner),
            )
            entries.append(MeterEntry(device_id, new_meter_password(), NAMES[i % len(NAMES)]))
        conn.execute(
            "INSERT INTO audit_log (actor_username, action, entity, entity_id)"
            " VALUES ('ems-demo', 'create', 'demo fleet', %s)",
            (str(meters),),
        )

    async def credentials() -> None:
        cfg = stack.cfg
        async with BrokerAdmin(cfg.host, cfg.mqtt_port, ADMIN_USER, portal_password) as admin:
            for entry in entries:
                await admin.create_meter(entry.device_id, entry.password)

    asyncio.run(credentials())
    write_fleet(
        home / "fleet.toml", entries, BrokerOptions(host=stack.cfg.host, port=stack.cfg.mqtt_port)
    )
    logins = {DEMO_USER: password}
    admin = next((p for u, p, _ in stack.logins if u == "admin" and not p.startswith("(")), None)
    if admin:
        logins["admin"] = admin
    _private_json(home / "logins.json", logins)


def _sim(home: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "device_sim",
        "run",
        "-c",
        str(home / "fleet.toml"),
        "--state-dir",
        str(home / "state"),
        "--progress",
        "30",
        *extra,
    ]


def start_demo(stack: Stack, secrets_: dict[str, str]) -> None:
    home = stack.cfg.home / "demo"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not (home / "fleet.toml").exists():
        _provision(stack, home, secrets_["portal_mqtt_password"], stack.cfg.demo_meters)
        stack.say(f"      backfilling {BACKFILL_DAYS} days of readings…")
        speed = BACKFILL_DAYS * 86400 / BACKFILL_SECONDS
        with (stack.cfg.home / "logs" / "demo-backfill.log").open("ab") as log:
            subprocess.run(
                _sim(
                    home,
                    "--start",
                    f"-{BACKFILL_DAYS}d",
                    "--speed",
                    f"{speed:.0f}",
                    "--duration",
                    str(BACKFILL_SECONDS),
                ),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=BACKFILL_SECONDS + 60,
            )
    stack.spawn("ems-sim", _sim(home, "--interval", "60", "--speed", "1"), env)
    logins = json.loads((home / "logins.json").read_text())
    stack.logins = [
        (u, logins["admin"], "administrator (demo)")
        if u == "admin" and "admin" in logins
        else (u, p, what)
        for u, p, what in stack.logins
    ]
    stack.logins.append(
        (DEMO_USER, logins[DEMO_USER], f"client with {stack.cfg.demo_meters} meters")
    )
