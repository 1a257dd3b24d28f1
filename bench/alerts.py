"""Alert delivery benchmark: reading published → hub → PostgreSQL → alert event → portal →
WebSocket client. Real Mosquitto, real PostgreSQL (fsync on), the hub and the portal as users
run them (`python -m hub`, `python -m portal`).

The receiving end is a WebSocket client (the `websockets` package) signed in as the devices'
owner, not a browser: it measures what the portal delivers, not a browser's rendering.
Each alert is on a fresh device-hour (one device per alert, each with a baseline reading
stored and rolled up beforehand, so that the hub's running total of the device is seeded and
the alert is decided as its reading commits: hub/running.py, hub/alert_store.py
``at_commit``); readings go one at a time, the next after the previous alert arrived.

``--load``: the same, while a background stream (bench/load.py, a process of its own) sends
``--load-rate`` readings/s (2,000) round-robin over ``--load-meters`` registered meters
(10,000) of another user, in order and plausible: they raise no alerts, but the hub stores,
totals and rolls them up and the portal relays their live events. Timing starts once the
rollup has seeded every background meter (the steady state). Target there: p99 ≤ 500 ms.

Also printed, so that a run can be read on another machine: the machine line
(bench/machine.py), and the CPU seconds of the hub, the portal, PostgreSQL, Mosquitto (and the
background publisher) over the timed phase.

    uv run python bench/alerts.py [--alerts 200]
    uv run python bench/alerts.py --load [--load-rate 2000] [--load-meters 10000]
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect

from bench.kit import BenchBroker, Services, percentile, reap_at_exit, services
from bench.load import BackgroundStream, add_load_devices, create_load_account
from bench.machine import CpuMeter, machine_line
from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import alerts_topic, readings_topic
from devkit.hubkit import (
    Gateway,
    add_devices,
    count,
    create_gateway,
    hub_process,
    wait_rolled_up,
)
from devkit.live_portal import LivePortal
from ems.broker import HUB_USER
from ems.procs import free_port
from portal.auth.tokens import issue_token
from portal.settings import PortalSettings

LIMIT_KWH = 1.0


def add_client(dsn: str, username: str = "bench") -> uuid.UUID:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, role, password_hash) VALUES (%s, 'client', 'x')"
            " RETURNING id",
            (username,),
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


class EventClock:
    """When each device's alert event left the broker: the hub's share of the latency (the
    rest is the portal's relay). Subscribed to the owner's alert topic with the operator
    tools' account, as a second portal replica would be."""

    def __init__(self, broker: BenchBroker, owner: uuid.UUID) -> None:
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self.sub = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=broker.admin_user, protocol=mqtt.MQTTv5
        )
        self.sub.username_pw_set(broker.admin_user, broker.portal_password)
        ready = threading.Event()
        self.sub.on_message = self._on_message
        self.sub.on_subscribe = lambda *_: ready.set()
        self.sub.on_connect = lambda c, *_: c.subscribe(alerts_topic(owner), 1)
        self.sub.connect(broker.host, broker.port)
        self.sub.loop_start()
        if not ready.wait(10):
            sys.exit("the alert events' subscription was not confirmed")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        event = json.loads(msg.payload)
        if event["event"] == "raised":
            with self._lock:
                self.arrived.setdefault(event["device_id"], now)

    def get(self, device_id: str) -> float | None:
        with self._lock:
            return self.arrived.get(device_id)

    def close(self) -> None:
        self.sub.disconnect()
        self.sub.loop_stop()


def seeded(dsn: str, devices: int, timeout: float) -> float:
    """Wait until the rollup has written an hour of every device (the running totals of a
    device are seeded by its first rollup: hub/running.py); the seconds it took. Polled every
    half second: a count over the hours every few milliseconds would itself load PostgreSQL."""
    t = time.monotonic()
    while count(dsn, "SELECT count(DISTINCT device_id) FROM hourly_energy") < devices:
        if time.monotonic() - t > timeout:
            sys.exit(f"the rollup did not seed the {devices} devices within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - t


def report_missed(svc: Services, log: Path, i: int, d: uuid.UUID) -> None:
    """What the hub, the portal and the database say of a missed alert (the first one)."""
    print(f"  alert {i} missed; hub log tail:\n{log.read_text()[-2000:]}")
    print(f"  portal log tail:\n{(svc.base / 'portal.log').read_text()[-2000:]}")
    with psycopg.connect(svc.dsn) as conn:
        rows = conn.execute(
            "SELECT kind, hour, value_kwh, status FROM alerts WHERE device_id = %s", (d,)
        ).fetchall()
        hours = conn.execute(
            "SELECT hour, energy_kwh, quality FROM hourly_energy WHERE device_id = %s", (d,)
        ).fetchall()
        readings = conn.execute(
            "SELECT ts, energy_kwh FROM readings WHERE device_id = %s", (d,)
        ).fetchall()
    print(f"  its alerts in the database: {rows}")
    print(f"  its hours: {hours}; its readings: {readings}")


@dataclass(frozen=True)
class Timing:
    at_s: float  # when the reading went, from the start of the timed phase
    total_ms: float  # publish → the WebSocket client has the alert
    hub_ms: float | None  # publish → the hub's alert event left the broker


def time_alerts(
    svc: Services,
    log: Path,
    gw: Gateway,
    clocks: tuple[AlertClock, EventClock],
    devices: list[uuid.UUID],
) -> tuple[list[Timing], int]:
    """One alert reading per device, the next once the previous alert arrived (or timed out):
    the timings, and how many alerts never arrived."""
    clock, events = clocks
    timings: list[Timing] = []
    missed = 0
    start = time.perf_counter()
    for i, d in enumerate(devices):
        reading = Reading(d, datetime.now(UTC), 100.0 + 2 * LIMIT_KWH)
        sent = time.perf_counter()
        gw.publish(readings_topic(d), encode_reading(reading))
        arrived = clock.wait(str(d), timeout=10)
        if arrived is None:
            missed += 1
            if missed == 1:
                report_missed(svc, log, i, d)
        else:
            left = events.get(str(d))
            hub_ms = None if left is None else (left - sent) * 1000
            timings.append(Timing(sent - start, (arrived - sent) * 1000, hub_ms))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(devices)} alerts", flush=True)
    return timings, missed


def latency_lines(timings: list[Timing], missed: int, target_ms: int) -> list[str]:
    total = [t.total_ms for t in timings]
    hub = [t.hub_ms for t in timings if t.hub_ms is not None]
    slowest = sorted(timings, key=lambda t: -t.total_ms)[:5]
    return [
        f"publish → browser notification (WebSocket client, not a browser), {len(total)} "
        f"alerts: p50 {percentile(total, 50):.1f} ms, p99 {percentile(total, 99):.1f} ms,"
        f" max {max(total, default=float('nan')):.1f} ms; missed {missed}"
        f" (target p99 ≤ {target_ms} ms)",
        f"  of which publish → the hub's alert event on the broker: p50 "
        f"{percentile(hub, 50):.1f} ms, p99 {percentile(hub, 99):.1f} ms",
        "  slowest (at s into the timed phase: total / hub ms): "
        + ", ".join(f"{t.at_s:.1f}: {t.total_ms:.0f} / {t.hub_ms or 0:.0f}" for t in slowest),
    ]


def cpu_line(spent: dict[str, float]) -> str:
    wall = spent.pop("wall")
    each = ", ".join(f"{name} {s:.1f} s ({100 * s / wall:.0f}%)" for name, s in spent.items())
    return f"CPU over the timed {wall:.1f} s (% of one core): {each}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--load", action="store_true", help="time alerts under a background stream")
    ap.add_argument("--load-rate", type=float, default=2000, help="background readings/s")
    ap.add_argument("--load-meters", type=int, default=10_000, help="background meters")
    args = ap.parse_args()
    n = args.alerts
    target_ms = 500 if args.load else 250

    print(machine_line())
    with services() as svc:
        assert svc.pg.proc is not None and svc.broker.server.proc is not None
        background = (
            f"under {args.load_rate:,.0f} readings/s over {args.load_meters:,} other meters"
            if args.load
            else "idle"
        )
        print(f"== {n} alerts, one per fresh device-hour, {background}; PostgreSQL fsync on")
        owner = add_client(svc.dsn)
        devices = add_devices(svc.dsn, n, max_hourly_kwh=LIMIT_KWH, owner_id=owner)
        load_devices: list[uuid.UUID] = []
        if args.load:
            # Another customer's meters: the portal relays their live events to no socket here.
            others = add_client(svc.dsn, "bench-load")
            load_devices = add_load_devices(svc.dsn, args.load_meters, args.load_rate, others)
        gw = Gateway(svc.broker, *create_gateway(svc.broker))
        stream: BackgroundStream | None = None
        if args.load:
            password = secrets.token_urlsafe(16)
            user = create_load_account(svc.broker, password)
            stream = BackgroundStream(svc.broker, user, password, load_devices, rate=args.load_rate)
        log = svc.base / "hub.log"
        hub_port = free_port()
        hub = reap_at_exit(
            hub_process(
                svc.dsn,
                svc.broker,
                HUB_USER,
                log,
                HUB_HTTP_PORT=str(hub_port),
                HUB_MQTT_USERNAME=HUB_USER,
            )
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
            # Baselines two minutes ago (no energy yet), stored and rolled up before timing
            # (and before the stream: under it the rollup is never idle).
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
                if stream is not None:
                    stream.start()
                    took = seeded(svc.dsn, n + len(load_devices), timeout=300)
                    print(f"background stream on; every meter seeded by the rollup in {took:.0f} s")
                token = issue_token(settings.jwt_secret, owner, "client", 3600).token
                clock = AlertClock(portal.url, token)
                events = EventClock(svc.broker, owner)
                roots = {
                    "hub": hub.pid,
                    "portal": portal.pid,
                    "postgres": svc.pg.proc.pid,
                    "mosquitto": svc.broker.server.proc.pid,
                }
                if stream is not None:
                    roots["load publisher"] = stream.pid
                    stream.mark()
                cpu = CpuMeter(roots)
                cpu.start()
                timings, missed = time_alerts(svc, log, gw, (clock, events), devices)
                spent = cpu.stop()
                summary = stream.stop() if stream is not None else None
                clock.ws.close()
                events.close()
        finally:
            if stream is not None:
                stream.kill()
            gw.close()
            hub.terminate()
            hub.wait(60)

    if summary is not None:
        print(
            f"background stream: {summary['marked_rate']:,.0f} readings/s achieved over the"
            f" timed phase ({summary['marked_sent']:,.0f} readings; asked {args.load_rate:,.0f}/s;"
            f" latest reading {1000 * summary['max_lag_s']:.0f} ms behind its schedule)"
        )
    for line in latency_lines(timings, missed, target_ms):
        print(line)
    print(cpu_line(spent))


if __name__ == "__main__":
    main()
