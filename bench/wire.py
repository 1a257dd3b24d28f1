"""Why the hub has its own MQTT client: drain rates of a queued QoS 1 backlog, three clients.

For each run, N readings are queued in a persistent session on a throwaway Mosquitto, then
drained (every message acknowledged, as the hub does) by:
  (a) hub.mqtt.connection.MqttConnection, acknowledging each delivered chunk at once;
  (b) paho-mqtt 2.x at its best: MQTT 5, its loop thread, manual acknowledgements (the hub's
      ack-after-commit needs them) sent from on_message, the same Receive Maximum; and once
      with paho's automatic acknowledgements, its ceiling (the hub cannot use them);
  (c) mosquitto_sub (C, libmosquitto), the reference.
Prints msg/s per client and run (connect to last message).

    uv run python bench/wire.py [--messages 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.kit import BenchBroker, raise_fd_limit
from devkit.hubkit import Gateway, create_gateway
from ems.broker import HUB_USER, PORTAL_USER, MosquittoServer, hub_user
from ems.procs import RunAs, free_port
from hub.batch import Message
from hub.mqtt.connection import ConnectionSettings, MqttConnection

TOPIC_FILTER = "ems/v1/meters/+/readings"
RECEIVE_MAXIMUM = 40_000  # the hub's default in-flight window
SESSION_EXPIRY_S = 3600
TIMEOUT_S = 600.0


def payload(i: int) -> bytes:
    # About the size of a single reading (contract.readings.encode_reading).
    return b'{"ts":"2026-01-01T00:00:00Z","energy_kwh":%d.5,"seq":%d,"v":1}' % (i, i)


class Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = threading.Event()

    def add(self, k: int) -> None:
        self.count += k
        if self.count >= self.n:
            self.done.set()

    def wait(self) -> None:
        if not self.done.wait(TIMEOUT_S):
            raise SystemExit(f"drained only {self.count} of {self.n} messages")


# --- (a) the hand-written client ----------------------------------------------------------------


def wire_drain(broker: BenchBroker, user: str, n: int) -> float | None:
    """Drains ``n`` messages; with n == 0 only sets up the session and returns None."""
    counter = Counter(n)
    conn: MqttConnection | None = None

    def deliver(messages: list[Message]) -> None:
        assert conn is not None
        conn.ack_many([(m.mid, m.qos) for m in messages])
        counter.add(len(messages))

    settings = ConnectionSettings(
        host=broker.host,
        port=broker.port,
        client_id=user,
        username=user,
        password=broker.hub_password,
        receive_maximum=RECEIVE_MAXIMUM,
        session_expiry_s=SESSION_EXPIRY_S,
    )
    conn = MqttConnection(settings, deliver, [(TOPIC_FILTER, 1)])
    t = time.perf_counter()
    conn.start()
    try:
        if not n:
            if not conn.connected.wait(60):
                raise SystemExit(f"hand-written client did not connect: {conn.fatal}")
            return None
        counter.wait()
        return time.perf_counter() - t
    finally:
        conn.stop()


# --- (b) paho-mqtt -----------------------------------------------------------------------------


def paho_drain(broker: BenchBroker, user: str, n: int, *, manual: bool = True) -> float | None:
    counter = Counter(n)
    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5, manual_ack=manual
    )
    client.username_pw_set(user, broker.hub_password)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            raise SystemExit(f"paho did not connect: {rc}")
        c.subscribe(TOPIC_FILTER, qos=1)

    def on_subscribe(*_: Any) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if manual:
            c.ack(msg.mid, msg.qos)
        counter.add(1)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    t = time.perf_counter()
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        if not n:
            if not subscribed.wait(60):
                raise SystemExit("paho did not subscribe")
            return None
        # Not waiting for the SUBACK: the broker sends the queued messages first.
        counter.wait()
        return time.perf_counter() - t
    finally:
        client.disconnect()
        client.loop_stop()


# --- (c) mosquitto_sub --------------------------------------------------------------------------


def mosquitto_sub_drain(broker: BenchBroker, user: str, n: int) -> float | None:
    command = [
        *("mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5"),
        *("-u", user, "-P", broker.hub_password, "-i", user, "-q", "1", "-c"),
        *("-x", str(SESSION_EXPIRY_S), "-t", TOPIC_FILTER),
    ]
    t = time.perf_counter()
    if not n:
        # Subscribe, then leave (what a previous run left unacknowledged is printed: hidden).
        subprocess.run([*command, "-E"], check=True, stdout=subprocess.DEVNULL)
        return None
    subprocess.run([*command, "-C", str(n)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


Drain = Callable[[BenchBroker, str, int], float | None]
CLIENTS: list[tuple[str, Drain]] = [
    ("hand-written (hub.mqtt)", wire_drain),
    ("paho-mqtt 2.x", paho_drain),
    # Not usable by the hub (acknowledged before the commit), but paho's ceiling.
    ("paho-mqtt 2.x, auto-ack", partial(paho_drain, manual=False)),
    ("mosquitto_sub (C)", mosquitto_sub_drain),
]


def start_broker(base: Path) -> BenchBroker:
    run_as = RunAs.detect()
    os.chmod(base, 0o755)  # noqa: S103 - the service user must reach its directories
    run_as.give(base)
    hub_pw, portal_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    # One hub account per client: each account is pinned to the client id of its name.
    mq = MosquittoServer(base / "mq", free_port(), hub_pw, portal_pw, run_as, hubs=len(CLIENTS))
    mq.start()
    return BenchBroker(mq, mq.host, mq.port, HUB_USER, hub_pw, PORTAL_USER, portal_pw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    raise_fd_limit()
    base = Path(tempfile.mkdtemp(prefix="ems-bench-wire-"))
    broker = start_broker(base)
    try:
        gateway = Gateway(broker, *create_gateway(broker))
        sent = [(f"ems/v1/meters/m{i % 1000}/readings", payload(i)) for i in range(args.messages)]
        rates: dict[str, list[float]] = {name: [] for name, _ in CLIENTS}
        for run in range(1, args.runs + 1):
            for k, (name, drain) in enumerate(CLIENTS):
                user = hub_user(k + 1)
                drain(broker, user, 0)  # the persistent session, subscribed, then away
                gateway.publish_many(sent)
                gateway.flush(TIMEOUT_S)
                elapsed = drain(broker, user, len(sent))
                assert elapsed is not None
                rates[name].append(len(sent) / elapsed)
                print(f"run {run}: {name:<26} {rates[name][-1]:>9,.0f} msg/s", flush=True)
        gateway.close()
        print(f"\n{args.messages:,} queued QoS 1 messages, drained and acknowledged:")
        for name, values in rates.items():
            shown = " / ".join(f"{v:,.0f}" for v in values)
            print(f"  {name:<26} {shown} msg/s (best {max(values):,.0f})")
    finally:
        broker.server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
