"""`ems up --replicas 2`: two hubs sharing the readings, two portals behind nginx, one Ctrl-C."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.sync.client import connect as ws_connect

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import Gateway, add_devices, create_gateway
from devkit.stackkit import (
    ADMIN_PASSWORD,
    StackPorts,
    kill_stack,
    read_until,
    stack_broker,
    stack_dsn,
    start_stack,
    stop_stack,
)
from portal.auth.tokens import SESSION_COOKIE


def _json(url: str, data: dict[str, Any] | None = None) -> Any:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
        return json.loads(resp.read())


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_two_replicas_share_the_load_and_stop_together(services_dir: Path) -> None:
    home = services_dir / ("replicas-" + os.urandom(4).hex())
    ports = StackPorts.free(replicas=2)
    proxy_port = ports.portal
    proc = start_stack(home, ports, "--replicas", "2", admin_password=ADMIN_PASSWORD)
    try:
        out = read_until(proc, "Press Ctrl-C", timeout=90)
        proxy = f"http://127.0.0.1:{proxy_port}"
        assert f"portal: {proxy} (nginx" in out
        hubs = [f"http://127.0.0.1:{ports.hub + i}" for i in range(2)]

        # Through nginx: every request answered, by both portals in turn.
        answers = [_json(f"{proxy}/health") for _ in range(6)]
        assert all(a["status"] == "ok" for a in answers)
        assert {a["instance"] for a in answers} == {"portal-1", "portal-2"}
        for hub in hubs:
            _json(f"{hub}/health")  # 200

        # A browser's WebSocket (session cookie, Origin of the proxy) through nginx reaches
        # either portal: the upgrade, the Host with its port and the cookie all pass.
        login = _json(
            f"{proxy}/api/v1/auth/login", {"username": "admin", "password": ADMIN_PASSWORD}
        )
        replicas = set()
        for _ in range(4):
            with ws_connect(
                f"ws://127.0.0.1:{proxy_port}/ws",
                origin=proxy,
                additional_headers={"Cookie": f"{SESSION_COOKIE}={login['token']}"},
                open_timeout=5,
            ) as ws:
                ready = json.loads(ws.recv(timeout=5))
                assert ready["type"] == "ready", ready
                replicas.add(ready["replica"])
        assert replicas == {"portal-1", "portal-2"}

        # Readings split across both hubs (one share group) and stored exactly once, even the
        # duplicates that reach the other hub.
        dsn = stack_dsn(home, ports)
        broker = stack_broker(home, ports)
        # The proxy hides /metrics (with or without a slash) and hands the portal the peer's
        # address, whatever X-Forwarded-For a client sends: sign-in limits are per address.
        for path in ("/metrics", "/metrics/"):
            with pytest.raises(urllib.error.HTTPError) as hidden:
                _json(f"{proxy}{path}")
            assert hidden.value.code == 403, path
            hidden.value.close()
        spoofed = urllib.request.Request(  # noqa: S310
            f"{proxy}/api/v1/auth/login",
            data=json.dumps({"username": "admin", "password": "wrong-password"}).encode(),
            headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(spoofed, timeout=10)  # noqa: S310
        assert refused.value.code == 401
        refused.value.close()
        with psycopg.connect(dsn) as conn:
            seen = conn.execute("SELECT address FROM login_failures").fetchall()
        assert seen == [("127.0.0.1",)]

        devices = add_devices(dsn, 20)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
        messages = [
            (
                readings_topic(d),
                encode_reading(Reading(d, start + timedelta(minutes=10 * k), 100.0 + k)),
            )
            for k in range(50)
            for d in devices
        ]
        gateway = Gateway(broker, *create_gateway(broker))
        gateway.publish_many([*messages, *messages[:200]])
        gateway.close()
        unique = len(messages)

        def stored() -> list[float]:
            return [_metric(f"{hub}/metrics", "hub_readings_stored_total") for hub in hubs]

        wait_for(
            lambda: (
                sum(stored()) >= unique and _count(dsn, "SELECT count(*) FROM readings") >= unique
            ),
            timeout=30,
            what=f"{unique} readings stored",
        )
        per_hub = stored()
        assert all(n > 0 for n in per_hub), f"one hub did all the work: {per_hub}"
        assert sum(per_hub) == unique
        time.sleep(0.5)  # let any late duplicate land before the final count
        assert _count(dsn, "SELECT count(*) FROM readings") == unique

        # One Ctrl-C stops everything: nginx, portals, hubs, Mosquitto, PostgreSQL.
        rest = stop_stack(proc, home, timeout=60)
        assert "stopped nginx" in rest
    finally:
        kill_stack(proc)
