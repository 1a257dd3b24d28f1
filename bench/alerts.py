"""Alert delivery benchmark: reading published → hub → PostgreSQL → alert event → portal →
WebSocket client. Real Mosquitto, real PostgreSQL (fsync on), the hub and the portal as users
run them (`python -m hub`, `python -m portal`).

The receiving end is a WebSocket client (the `websockets` package) signed in as the devices'
owner, not a browser: it measures what the portal delivers, not a browser's rendering.
Each alert is on a fresh device-hour (one device per alert, each with a baseline reading
stored beforehand); readings go one at a time, the next after the previous alert arrived.

    uv run python bench/alerts.py [--alerts 200]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from websockets.sync.client import connect

from bench.kit import percentile, services
from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.hubkit import Gateway, add_devices, create_gateway, hub_process, wait_rolled_up
from devkit.live_portal import LivePortal
from ems.broker import HUB_USER
from ems.procs import free_port
from portal.auth.tokens import issue_token
from portal.settings import PortalSettings

LIMIT_KWH = 1.0


def add_client(dsn: str) -> uuid.UUID:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, role, password_hash) VALUES ('bench', 'client', 'x')"
            " RETURNING id"
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def subscribed(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310
        return bool(json.load(response).get("events") == "subscribed")


def hub_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(json.load(response).get("mqtt") == "connected")
    except OSError:
        return False


class AlertClock:
    """Receives on the socket in a thread; remembers when each device's alert arrived."""

    def __init__(self, url: str, token: str) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        self.ws = connect(
            url.replace("http", "ws") + "/ws",
            additional_headers={"Authorization": f"Bearer {token}"},
            proxy=None,
            legacy=True,
        )
        assert json.loads(self.ws.recv(timeout=10))["type"] == "ready"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for text in self.ws:
            now = time.perf_counter()
            message = json.loads(text)
            if message["type"] == "alert" and message["event"] == "raised":
                with self.changed:
                    self.arrived[message["alert"]["device_id"]] = now
                    self.changed.notify_all()

    def wait(self, device_id: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: device_id in self.arrived, timeout)
            return self.arrived.get(device_id)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200)
    args = ap.parse_args()
    n = args.alerts

    with services() as svc:
        print(f"== {n} alerts, one per fresh device-hour; PostgreSQL fsync on")
        owner = add_client(svc.dsn)
        devices = add_devices(svc.dsn, n, max_hourly_kwh=LIMIT_KWH, owner_id=owner)
        gw = Gateway(svc.broker, *create_gateway(svc.broker))
        log = svc.base / "hub.log"
        hub_port = free_port()
        hub = hub_process(
            svc.dsn,
            svc.broker,
            HUB_USER,
            log,
            HUB_HTTP_PORT=str(hub_port),
            HUB_MQTT_USERNAME=HUB_USER,
        )
        settings = PortalSettings(
            database_url=svc.dsn,
            jwt_secret=secrets.token_urlsafe(32),
            mqtt_username=svc.broker.portal_user,
            mqtt_password=svc.broker.portal_password,
            mqtt_host=svc.broker.host,
            mqtt_port=svc.broker.port,
        )
        try:
            # Readings published before the hub's shared subscription exists reach nobody.
            deadline = time.monotonic() + 30
            while not hub_ready(hub_port) and time.monotonic() < deadline:
                time.sleep(0.05)
            # Baselines two minutes ago (no energy yet), stored and rolled up before timing.
            base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
            for d in devices:
                gw.publish(readings_topic(d), encode_reading(Reading(d, base, 100.0)))
            gw.flush()
            wait_rolled_up(svc.dsn, timeout=120)
            print(f"baselines stored for {n} devices")

            with LivePortal(settings, svc.base / "portal.log") as portal:
                deadline = time.monotonic() + 30
                while not subscribed(portal.url) and time.monotonic() < deadline:
                    time.sleep(0.05)
                token = issue_token(settings.jwt_secret, owner, "client", 3600).token
                clock = AlertClock(portal.url, token)
                latencies: list[float] = []
                missed = 0
                for i, d in enumerate(devices):
                    reading = Reading(d, datetime.now(UTC), 100.0 + 2 * LIMIT_KWH)
                    sent = time.perf_counter()
                    gw.publish(readings_topic(d), encode_reading(reading))
                    arrived = clock.wait(str(d), timeout=10)
                    if arrived is None:
                        missed += 1
                        if missed == 1:
                            print(f"  alert {i} missed; hub log tail:\n{log.read_text()[-2000:]}")
                            plog = (svc.base / "portal.log").read_text()[-2000:]
                            print(f"  portal log tail:\n{plog}")
                            with psycopg.connect(svc.dsn) as conn:
                                rows = conn.execute(
                                    "SELECT kind, hour, value_kwh, status FROM alerts"
                                    " WHERE device_id = %s",
                                    (d,),
                                ).fetchall()
                                hours = conn.execute(
                                    "SELECT hour, energy_kwh, quality FROM hourly_energy"
                                    " WHERE device_id = %s",
                                    (d,),
                                ).fetchall()
                                readings = conn.execute(
                                    "SELECT ts, energy_kwh FROM readings WHERE device_id = %s",
                                    (d,),
                                ).fetchall()
                            print(f"  its alerts in the database: {rows}")
                            print(f"  its hours: {hours}; its readings: {readings}")
                    else:
                        latencies.append((arrived - sent) * 1000)
                    if (i + 1) % 50 == 0:
                        print(f"  {i + 1}/{n} alerts", flush=True)
                clock.ws.close()
        finally:
            gw.close()
            hub.terminate()
            hub.wait(60)

    print(
        f"publish → browser notification (WebSocket client, not a browser), {len(latencies)} "
        f"alerts: p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms,"
        f" max {max(latencies, default=float('nan')):.1f} ms; missed {missed} (target p99 ≤ 250 ms)"
    )


if __name__ == "__main__":
    main()
