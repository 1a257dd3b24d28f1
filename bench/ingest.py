"""Hub ingest benchmark: real Mosquitto, real PostgreSQL (fsync on), the hub as users run it.

Prints:
  1. sustained readings/s committed by one hub draining a queued stream;
  2. the rate at which a plain `mosquitto_sub` (QoS 1, persistent session) drains the same
     stream from the same broker, and the ratio of the two;
  3. p50/p99 publish-to-commit latency at a fixed rate (measured to the hub's live event,
     which is published after the commit: an upper bound);
  4. the hub's peak RSS with 10,000 registered devices.

    uv run python bench/ingest.py [--devices 10000] [--readings 200000] [--rate 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import peak_rss_mb, percentile, services
from ems.procs import free_port
from hub.protocol import Reading, encode_reading, readings_topic
from tests.hubkit import Gateway, add_devices, count, create_gateway, hub_process

MARK = 1e9  # registers in the latency phase start here, far above the drained stream's


def stream(devices: list, n: int, start: datetime) -> list[tuple[str, bytes]]:
    """n single-reading messages, round-robin over the devices, 10-minute steps per meter."""
    per = -(-n // len(devices))
    out = []
    for k in range(per):
        ts = start + timedelta(minutes=10 * k)
        for i, d in enumerate(devices):
            if len(out) == n:
                return out
            out.append((readings_topic(d), encode_reading(Reading(d, ts, 1000.0 + k * 0.5 + i))))
    return out


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=2_000)
    ap.add_argument("--rate-seconds", type=int, default=10)
    args = ap.parse_args()

    with services() as svc:
        broker = svc.broker
        print(f"== {args.devices} devices, {args.readings} readings; PostgreSQL fsync on")
        devices = add_devices(svc.dsn, args.devices)
        gw_user, gw_pw = create_gateway(broker)
        # The stream ends ten minutes ago, so the latency phase continues each meter's series
        # (a meter silent for days would make its next reading spread over every hour between).
        per_meter = -(-args.readings // args.devices)
        start = datetime.now(UTC) - timedelta(minutes=10 * (per_meter + 1))
        messages = stream(devices, args.readings, start)

        # --- 1. mosquitto_sub draining the stream -----------------------------------------
        base = [
            "mosquitto_sub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-u",
            broker.hub_user,
            "-P",
            broker.hub_password,
            "-q",
            "1",
            "-c",
            "-i",
            "bench-drain",
            "-t",
            "ems/v1/meters/+/readings",
        ]
        subprocess.run([*base, "-E"], check=True)  # create the persistent session, then leave
        gw = Gateway(broker, gw_user, gw_pw)
        gw.publish_many(messages)
        gw.flush(300)
        t = time.perf_counter()
        subprocess.run([*base, "-C", str(len(messages))], check=True, stdout=subprocess.DEVNULL)
        drain_rate = len(messages) / (time.perf_counter() - t)
        # Drop the drain session's subscription so the hub's run gets the broker to itself.
        unsub = [*base[:-2], "-t", "none/x", "-E"]
        subprocess.run(unsub, check=False, stdout=subprocess.DEVNULL)
        print(f"mosquitto_sub drain: {drain_rate:,.0f} msg/s")

        # --- 2. the hub draining the same stream -----------------------------------------------
        log = svc.base / "hub.log"
        hub = hub_process(svc.dsn, broker, "bench-hub", log)
        deadline = time.monotonic() + 30
        while "connected to" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        hub.terminate()  # its persistent session (and share-group membership) stays
        hub.wait(30)
        gw.publish_many(messages)
        gw.flush(300)
        http_port = free_port()
        hub = hub_process(svc.dsn, broker, "bench-hub", log, HUB_HTTP_PORT=str(http_port))
        t = time.perf_counter()
        while count(svc.dsn, "SELECT count(*) FROM readings") < len(messages):
            time.sleep(0.05)
            if time.perf_counter() - t > 600:
                sys.exit("hub did not store the stream within 10 minutes")
        hub_rate = len(messages) / (time.perf_counter() - t)
        print(
            f"hub sustained:       {hub_rate:,.0f} readings/s committed "
            f"(ratio to mosquitto_sub: {hub_rate / drain_rate:.2f})"
        )

        # --- 3. latency at a fixed rate ----------------------------------------------------------
        latencies: list[float] = []
        lock = threading.Lock()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.username_pw_set(broker.portal_user, broker.portal_password)
        subscribed = threading.Event()

        def on_message(_c, _u, msg) -> None:
            now = time.time()
            event = json.loads(msg.payload)
            if event["energy_kwh"] < MARK:
                return  # a live event from the drained stream, not from this phase
            with lock:
                latencies.append(now - datetime.fromisoformat(event["ts"]).timestamp())

        sub.on_message = on_message
        sub.on_subscribe = lambda *_: subscribed.set()
        sub.on_connect = lambda c, *_: c.subscribe("ems/v1/events/live/+", 0)
        sub.connect(broker.host, broker.port)
        sub.loop_start()
        subscribed.wait(10)
        interval = 1.0 / args.rate
        total = args.rate * args.rate_seconds
        t0 = time.perf_counter()
        for i in range(total):
            target = t0 + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            d = devices[i % len(devices)]
            now = datetime.now(UTC)
            gw.publish(readings_topic(d), encode_reading(Reading(d, now, MARK + i)))
        achieved = total / (time.perf_counter() - t0)
        gw.flush(60)
        deadline = time.monotonic() + 30
        while len(latencies) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        with lock:
            lat = [x * 1000 for x in latencies]
        print(
            f"latency at {achieved:,.0f} readings/s ({len(lat)} samples): "
            f"p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms "
            "(publish → commit → live event)"
        )
        print(f"hub peak RSS:        {peak_rss_mb(hub.pid):.0f} MB with {args.devices} devices")
        batches = max(1.0, metric(http_port, "hub_batch_messages_count"))
        print(f"hub mean batch:      {metric(http_port, 'hub_batch_messages_sum') / batches:.0f}")
        sub.disconnect()
        sub.loop_stop()
        gw.close()
        t = time.perf_counter()
        hub.terminate()
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            hub.kill()
            print(log.read_text()[-3000:])
            raise
        print(f"hub stop (drain + final flush): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
