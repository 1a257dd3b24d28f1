"""`ems-sim run` as a field engineer runs it, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.codec import decode_status
from contract.payloads import Reading
from contract.readings import decode_readings
from contract.topics import parse_meter_topic
from devkit.helpers import Subscriber, wait_for
from ems.broker import HUB_USER
from portal.broker_admin import BrokerAdmin
from tests.conftest import BrokerInfo

ROOT = Path(__file__).resolve().parents[2]
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def provision(broker: BrokerInfo, n: int) -> list[tuple[uuid.UUID, str]]:
    meters = [(uuid.uuid4(), secrets.token_urlsafe(16)) for _ in range(n)]

    async def create() -> None:
        async with BrokerAdmin(
            broker.host, broker.port, broker.portal_user, broker.portal_password
        ) as admin:
            for device_id, password in meters:
                await admin.create_meter(device_id, password)

    asyncio.run(create())
    return meters


def fleet_file(path: Path, broker: BrokerInfo, meters: list[tuple[uuid.UUID, str]]) -> Path:
    lines = ["[broker]", f'host = "{broker.host}"', f"port = {broker.port}", ""]
    for device_id, password in meters:
        lines += ["[[meters]]", f'device_id = "{device_id}"', f'password = "{password}"', ""]
    path.write_text("\n".join(lines))
    return path


class SimProcess:
    """`python -m device_sim run ...` with its output collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "device_sim", "run", "--progress", "0.2", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def progress(self) -> dict[str, int]:
        """The figures of the last progress line (empty before the first)."""
        for line in reversed(self.lines):
            if line.startswith("ems-sim ["):
                return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
        return {}

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """``wait_for``, and on a timeout the simulator's output in the failure message."""
        try:
            return wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- ems-sim output ---\n{self.output()[-3000:]}"
            ) from None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(20)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def sims() -> Iterator[Callable[..., SimProcess]]:
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        sim = SimProcess(*args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


def readings_of(messages: list[mqtt.MQTTMessage]) -> list[tuple[uuid.UUID, list[Reading]]]:
    out = []
    for message in messages:
        parsed = parse_meter_topic(message.topic)
        assert parsed is not None, message.topic
        out.append((parsed[0], decode_readings(parsed[0], message.payload, now=FAR)))
    return out


def retained_status(broker: BrokerInfo, device_id: uuid.UUID) -> tuple[str, datetime | None]:
    sub = Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        f"ems/v1/meters/{device_id}/status",
    )
    try:
        message = wait_for(sub.received, what="the retained status")[0]
        assert message.retain
        return decode_status(message.payload)
    finally:
        sub.close()


def hub(broker: BrokerInfo) -> Subscriber:
    return Subscriber(
        broker.host, broker.port, broker.hub_user, broker.hub_password, "ems/v1/meters/+/readings"
    )


def test_a_meter_publishes_v1_readings_on_the_grid_and_says_offline_when_stopped(
    broker: BrokerInfo, sims: Callable[..., SimProcess]
) -> None:
    ((device_id, password),) = provision(broker, 1)
    sub = hub(broker)
    try:
        sim = sims(
            *("--device-id", str(device_id), f"--password={password}"),
            *("--host", broker.host, "--port", str(broker.port)),
            *("--speed", "600", "--no-state", "--start", "2026-11-25T10:00:00Z"),
        )
        sim.wait(lambda: len(sub.received()) >= 4, 20, "four readings")
        assert sim.stop() == 0
        received = readings_of(sub.received())
    finally:
        sub.close()
    assert {d for d, _ in received} == {device_id}
    readings = [r for _, batch in received for r in batch]
    assert [r.seq for r in readings] == list(range(len(readings)))
    assert [r.ts for r in readings[:4]] == [
        datetime(2026, 11, 25, 10, tzinfo=UTC) + timedelta(minutes=10 * i) for i in range(4)
    ]
    energies = [r.energy_kwh for r in readings]
    assert energies == sorted(energies) and energies[0] < energies[-1]
    assert all(r.power_w is not None and r.power_w > 0 for r in readings[1:])
    assert "stopped (SIGTERM)" in sim.output()
    state, ts = retained_status(broker, device_id)
    assert state == "offline" and ts is not None  # a clean stop, not the last will


def test_the_last_will_fires_when_the_meter_dies_without_disconnecting(
    broker: BrokerInfo, sims: Callable[..., SimProcess]
) -> None:
    ((device_id, password),) = provision(broker, 1)
    sim = sims(
        *("--device-id", str(device_id), f"--password={password}"),
        *("--host", broker.host, "--port", str(broker.port), "--no-state"),
    )
    sim.wait(lambda: sim.progress().get("connected") == 1, 20, "the meter to connect")
    assert retained_status(broker, device_id)[0] == "online"
    sim.stop(signal.SIGKILL)
    # The will has no time stamp (it was set at connect time): that tells it from a clean stop.
    assert wait_for(lambda: retained_status(broker, device_id) == ("offline", None), 20)


class PersistentSubscriber:
    """The hub's view: a persistent session (fixed client id, clean_start False, session
    expiry), so what is published while it reconnects after a broker restart is kept for it."""

    def __init__(self, broker: BrokerInfo) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        # The hub's own account, pinned to its client id (the restart pins every account).
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=HUB_USER, protocol=5)
        self.client.username_pw_set(HUB_USER, broker.hub_password)
        self.client.reconnect_delay_set(1, 1)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.connected.clear()
        self.client.on_message = lambda _c, _u, m: self.messages.append(m)
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.connected.wait(10)

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        c.subscribe("ems/v1/meters/+/readings", qos=1)
        self.connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


OUTAGE_S = 60


def test_readings_made_while_the_broker_is_down_all_arrive_afterwards_exactly_once(
    broker: BrokerInfo, sims: Callable[..., SimProcess], tmp_path: Path
) -> None:
    ((device_id, password),) = provision(broker, 1)
    sub = PersistentSubscriber(broker)
    try:
        sim = sims(
            *("--device-id", str(device_id), f"--password={password}"),
            *("--host", broker.host, "--port", str(broker.port)),
            *("--speed", "600", "--backoff-max", "1", "--state-dir", str(tmp_path)),
        )
        sim.wait(lambda: len(sub.messages) >= 2, 20, "readings before the outage")
        broker.server.stop()
        down_at = time.monotonic()
        wait_for(lambda: not sub.connected.is_set(), 10, "the subscriber to see the outage")
        before = {r.seq for _, b in readings_of(list(sub.messages)) for r in b}
        # A minute without a broker (ten simulated hours: about sixty readings to hold).
        sim.wait(
            lambda: (
                time.monotonic() - down_at >= OUTAGE_S and sim.progress().get("buffered", 0) >= 4
            ),
            OUTAGE_S + 30,
            f"{OUTAGE_S} s of outage with readings buffered",
        )
        broker.server.start()
        sim.wait(lambda: sim.progress().get("buffered", 1) == 0, 30, "the buffer to be flushed")
        assert sim.stop() == 0
        produced = int(re.findall(r"produced=(\d+)", sim.output())[-1])
        wait_for(
            lambda: len({r.seq for _, b in readings_of(list(sub.messages)) for r in b}) >= produced,
            20,
            "every reading at the subscriber",
        )
        received = readings_of(list(sub.messages))
    finally:
        sub.close()
    seqs = Counter(r.seq for _, batch in received for r in batch)
    assert set(seqs) == set(range(produced))
    assert produced - len(before) >= 50  # the minute's readings, all held and then delivered
    # Exactly once for everything made after the outage began. A repeat is allowed only for
    # the reading that was in flight when the broker stopped (QoS 1 at-least-once: the broker
    # may have stored it, and the meter, lacking its PUBACK, sent it again).
    in_flight = max(before) + 1
    assert all(count == 1 for seq, count in seqs.items() if seq > in_flight), seqs
    flushes = [batch for _, batch in received if len(batch) > 1]
    assert flushes and max(len(b) for b in flushes) >= 3
    for batch in flushes:
        assert [r.seq for r in batch] == sorted(r.seq for r in batch)


def test_two_simulators_with_their_own_files_publish_each_meter_under_its_own_id(
    broker: BrokerInfo, sims: Callable[..., SimProcess], tmp_path: Path
) -> None:
    meters = provision(broker, 4)
    a = fleet_file(tmp_path / "a.toml", broker, meters[:2])
    b = fleet_file(tmp_path / "b.toml", broker, meters[2:])
    sub = hub(broker)
    try:
        sim_a = sims("-c", str(a), "--speed", "600", "--no-state", "--format", "classic")
        sim_b = sims("-c", str(b), "--speed", "600", "--no-state")

        def topics() -> set[uuid.UUID]:
            return {d for d, _ in readings_of(sub.received())}

        sim_b.wait(lambda: len(topics()) == 4, 20, "readings from all four meters")
        assert sim_a.stop() == 0 and sim_b.stop() == 0
        received = readings_of(sub.received())  # decoding checks payload ids against topics
    finally:
        sub.close()
    assert topics() == {d for d, _ in meters}
    sources = {d: {r.source for r in batch} for d, batch in received}
    assert all(sources[d] == {"classic"} for d, _ in meters[:2])
    assert all(sources[d] == {"v1"} for d, _ in meters[2:])


def test_a_replayed_file_is_sent_value_for_value(
    broker: BrokerInfo, sims: Callable[..., SimProcess], tmp_path: Path
) -> None:
    ((device_id, password),) = provision(broker, 1)
    values = [1000.0 + 0.5 * i + (i % 3) * 0.125 for i in range(8)]
    replay = tmp_path / "sensor.csv"
    replay.write_text("\n".join(str(v) for v in values) + "\n")
    sub = hub(broker)
    try:
        sim = sims(
            *("--device-id", str(device_id), f"--password={password}"),
            *("--host", broker.host, "--port", str(broker.port), "--no-state"),
            *("--speed", "600", "--replay", str(replay)),
        )
        sim.wait(lambda: len(sub.received()) >= 6, 20, "six readings")
        sim.stop()
        readings = [r for _, b in readings_of(sub.received()) for r in b]
    finally:
        sub.close()
    assert [r.energy_kwh for r in readings[:6]] == values[:6]


def test_an_outage_fault_fires_the_will_and_flushes_afterwards(
    broker: BrokerInfo, sims: Callable[..., SimProcess]
) -> None:
    ((device_id, password),) = provision(broker, 1)
    sub = hub(broker)
    status = Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        "ems/v1/meters/+/status",
    )
    try:
        sim = sims(
            *("--device-id", str(device_id), f"--password={password}"),
            *("--host", broker.host, "--port", str(broker.port), "--no-state"),
            *("--speed", "600", "--backoff-max", "1", "--fault", "outage@20m,for=40m"),
        )
        sim.wait(
            lambda: any(len(b) >= 4 for _, b in readings_of(sub.received())),
            30,
            "the flush after the outage",
        )
        sim.stop()
        states = [decode_status(m.payload) for m in status.received()]
    finally:
        sub.close()
        status.close()
    assert ("offline", None) in states  # the will, when the outage cut the connection
    assert "outages=1" in sim.output()
    readings = [r for _, b in readings_of(sub.received()) for r in b]
    assert {r.seq for r in readings} >= set(range(7))
