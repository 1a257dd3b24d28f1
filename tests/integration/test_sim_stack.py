"""ems-sim against a whole deployment (`ems up`): two simulators with their own files for two
clients, and `ems-sim check` passing — then failing with a clear report once readings are
being lost on the way to the database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from devkit.helpers import wait_for
from devkit.stackkit import (
    ADMIN_PASSWORD,
    StackPorts,
    kill_stack,
    read_until,
    stack_dsn,
    start_stack,
    stop_stack,
)

ROOT = Path(__file__).resolve().parents[2]
# `ems-sim check` sends the hours before the current one unless told otherwise. Its data then
# depend on the time of day, and the planted loss of the hh:50 readings changes an hour only
# where the two 10-minute deltas it moves differ (about 1 run in 30 one was equal). A fixed
# window keeps the data, and so the verdict, the same on every run; the stack's hub is told
# to take readings that old (HUB_MAX_LATENESS_S, passed through by `ems up`).
CHECK_WINDOW = ("--end", "2025-06-02T12:00:00Z", "--seed", "1")
HUB_TAKES_OLD_READINGS = {"HUB_MAX_LATENESS_S": str(100 * 365 * 86400)}


def sim(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device_sim", *args],
        cwd=ROOT,
        env={**os.environ, "EMS_SIM_ADMIN_PASSWORD": ADMIN_PASSWORD},
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


@contextlib.contextmanager
def signed_in(portal: str, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal, timeout=10) as client:
        response = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        client.cookies.clear()
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield client


def test_simulators_clients_and_the_conformance_check_against_a_running_stack(
    services_dir: Path, tmp_path: Path
) -> None:
    home = services_dir / ("sim-" + os.urandom(4).hex())
    ports = StackPorts.free()
    portal = f"http://127.0.0.1:{ports.portal}"
    broker = ("--host", "127.0.0.1", "--port", str(ports.mqtt))
    stack = start_stack(home, ports, admin_password=ADMIN_PASSWORD, env=HUB_TAKES_OLD_READINGS)
    runs: list[subprocess.Popen[str]] = []
    try:
        read_until(stack, "Press Ctrl-C")
        with signed_in(portal, "admin", ADMIN_PASSWORD) as admin:
            for name in ("alice", "bob"):
                created = admin.post(
                    "/api/v1/users",
                    json={"username": name, "password": f"{name}-password-1", "role": "client"},
                )
                assert created.status_code == 201, created.text

        # Each client's meter provisioned into its own file, both simulators running at once.
        files = {name: tmp_path / f"{name}.toml" for name in ("alice", "bob")}
        for name, file in files.items():
            done = sim(
                "provision",
                "--owner",
                name,
                "--portal",
                portal,
                "-o",
                str(file),
                *broker,
                timeout=60,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "device_sim",
                    "run",
                    "-c",
                    str(file),
                    "--start=-1d",  # a day ago, at 600× real time: in the past, so the hub takes it
                    "--speed",
                    "600",
                    "--no-state",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for file in files.values()
        ]
        own: dict[str, str] = {}
        since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        for name in files:
            with signed_in(portal, name, f"{name}-password-1") as client:
                (device,) = client.get("/api/v1/devices").json()  # exactly one: their own
                own[name] = device["id"]

                def readings(c: httpx.Client = client, d: str = device["id"]) -> int:
                    page = c.get(f"/api/v1/devices/{d}/readings", params={"from": since})
                    assert page.status_code == 200, page.text
                    return int(page.json()["count"])

                wait_for(lambda r=readings: r() >= 3, timeout=30, what=f"{name}'s readings")
        for name, other in (("alice", "bob"), ("bob", "alice")):
            with signed_in(portal, name, f"{name}-password-1") as client:
                assert [d["id"] for d in client.get("/api/v1/devices").json()] == [own[name]]
                for path in ("", "/readings", "/consumption/hourly"):
                    response = client.get(f"/api/v1/devices/{own[other]}{path}")
                    assert response.status_code == 404, (name, path, response.text)
        for run in runs:
            run.send_signal(signal.SIGTERM)
            output, _ = run.communicate(timeout=30)
            assert run.returncode == 0, output

        # The conformance check: a known series through the broker, the hubs and the database,
        # read back through the portal API.
        passed = sim(
            "check", "--portal", portal, *broker, *CHECK_WINDOW, "--timeout", "60", timeout=120
        )
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "PASS: all 3 hours stored as sent" in passed.stdout

        # Now readings at hh:50 are lost between the hub and the table (a trigger drops them,
        # as a faulty hub or a lossy pipeline would): the hour boundaries come out wrong.
        dsn = stack_dsn(home, ports)
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "CREATE FUNCTION lose_readings() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF extract(minute FROM NEW.ts) = 50 THEN RETURN NULL; END IF;"
                " RETURN NEW; END $$"
            )
            conn.execute(
                "CREATE TRIGGER lose_readings BEFORE INSERT ON readings"
                " FOR EACH ROW EXECUTE FUNCTION lose_readings()"
            )
        failed = sim(
            "check", "--portal", portal, *broker, *CHECK_WINDOW, "--timeout", "15", timeout=120
        )
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "FAIL: 3 different of 3 hours" in failed.stdout, failed.stdout
        assert failed.stdout.count("DIFFERENT") == 3  # one report row per hour that is off
        stop_stack(stack, home)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
        kill_stack(stack)
