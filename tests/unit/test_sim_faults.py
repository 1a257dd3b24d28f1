"""Each fault scenario transforms a meter's series as device_sim/README.md documents."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.backoff import BackoffPolicy
from contract.codec import decode_status
from contract.payloads import Reading
from contract.readings import decode_readings
from contract.reasons import DecodeError
from device_sim.delivery_faults import FaultyClient, malformed_payloads
from device_sim.scenario import Fault, ScenarioError, load_scenario, parse_fault
from device_sim.sensor_faults import FaultySensor
from firmware_stub.buffer import ReadingBuffer
from firmware_stub.clock import ManualClock
from firmware_stub.fake import FakeBroker
from firmware_stub.meter import Meter
from firmware_stub.model import Measurement, MeterConfig
from firmware_stub.storage import MemoryRecordStore

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
STEP = timedelta(minutes=10)
FAR = datetime(2100, 1, 1, tzinfo=UTC)
DEVICE = uuid.UUID("5c2494a3-0000-4000-8000-00000000000f")


def register(ts: datetime) -> Measurement:
    """1 kWh per reading interval, from 100 kWh at START."""
    return Measurement(100.0 + (ts - START) / STEP, 6000.0)


def faults(*specs: str) -> list[Fault]:
    return [parse_fault(spec, START) for spec in specs]


def sensed(*specs: str, n: int = 8) -> list[Measurement]:
    sensor = FaultySensor(register, faults(*specs))
    return [sensor(START + i * STEP) for i in range(n)]


# ---- faults in what the meter measures --------------------------------------------------


def test_a_counter_reset_restarts_the_register_after_the_last_reading_before_it() -> None:
    values = [m.energy_kwh for m in sensed("reset@25m")]
    assert values == [100, 101, 102, 1, 2, 3, 4, 5]


def test_a_glitch_reports_zero_once_then_the_true_register_again() -> None:
    readings = sensed("glitch@20m")
    assert [m.energy_kwh for m in readings] == [100, 101, 0, 103, 104, 105, 106, 107]
    assert readings[2].power_w == 0


def test_clock_skew_shifts_time_stamps_from_its_start_on() -> None:
    readings = sensed("skew@30m,by=-15m")
    assert [m.ts for m in readings[:3]] == [None, None, None]
    assert [m.ts for m in readings[3:5]] == [
        START + 15 * timedelta(minutes=1),
        START + 25 * timedelta(minutes=1),
    ]
    assert [m.energy_kwh for m in readings] == [100 + i for i in range(8)]


# ---- faults on the wire -------------------------------------------------------------------


class WireRig:
    """A meter behind a FaultyClient, talking to an in-memory broker, in simulated time."""

    def __init__(self, *specs: str) -> None:
        self.clock = ManualClock(START)
        self.broker = FakeBroker()
        self.wire = FaultyClient(
            self.broker.client(str(DEVICE)), self.clock, faults(*specs), DEVICE
        )
        self.meter = Meter(
            DEVICE,
            client=self.wire,
            clock=self.clock,
            buffer=ReadingBuffer(MemoryRecordStore()),
            sensor=register,
            config=MeterConfig(backoff=BackoffPolicy(initial_s=1, maximum_s=1)),
            rng=random.Random(1),
        )
        self.meter.start()
        self.step()

    def step(self) -> None:
        for _ in range(10):
            self.meter.poll()
            self.wire.poll()
            if not self.broker.deliver():
                return

    def run(self, minutes: int) -> None:
        for _ in range(minutes * 6):
            self.clock.advance(10)
            self.step()

    def payloads(self) -> list[bytes]:
        return [p.payload for p in self.broker.topics("/readings")]

    def readings(self) -> list[list[Reading]]:
        return [decode_readings(DEVICE, p, now=FAR) for p in self.payloads()]


def seqs(batches: list[list[Reading]]) -> list[list[int | None]]:
    return [[r.seq for r in batch] for batch in batches]


def test_an_outage_cuts_the_connection_with_the_will_then_the_backlog_is_flushed() -> None:
    rig = WireRig("outage@15m,for=40m")
    rig.run(90)
    statuses = [decode_status(p.payload) for p in rig.broker.topics("/status")]
    assert ("offline", None) in statuses  # the last will, when the outage began
    assert statuses[-1][0] == "online"
    # 10:00, 10:10 before; 10:20..10:50 made during the outage arrive as one array afterwards.
    assert seqs(rig.readings()) == [[0], [1], [2, 3, 4, 5], [6], [7], [8], [9]]
    assert rig.wire.injected.outages == 1


def test_duplicate_bursts_repeat_each_readings_message() -> None:
    rig = WireRig("duplicates@15m,for=20m,copies=2")
    rig.run(50)
    assert seqs(rig.readings()) == [[0], [1], [2], [2], [2], [3], [3], [3], [4], [5]]
    assert rig.meter.buffer.pending_count == 0  # the copies' acknowledgements are not the meter's


def test_out_of_order_delivery_swaps_pairs_of_messages() -> None:
    rig = WireRig("reorder@15m,for=40m")
    rig.run(70)
    assert seqs(rig.readings()) == [[0], [1], [3], [2], [5], [4], [6], [7]]
    assert rig.meter.buffer.pending_count == 0


def test_malformed_payloads_follow_readings_and_the_hub_rejects_each_for_its_reason() -> None:
    rig = WireRig("malformed@15m,for=30m")
    rig.run(60)
    payloads = rig.payloads()
    good, bad = [], []
    for payload in payloads:
        try:
            good.append(decode_readings(DEVICE, payload, now=FAR))
        except DecodeError as exc:
            bad.append(exc.reason)
    assert seqs(good) == [[i] for i in range(7)]
    assert bad == ["invalid_json", "missing_field:ts", "bad_timestamp"]


def test_every_malformed_payload_is_dead_lettered_by_the_hub_for_the_reason_documented() -> None:
    for reason, payload in malformed_payloads(START, DEVICE):
        with pytest.raises(DecodeError) as caught:
            decode_readings(DEVICE, payload, now=FAR)
        assert caught.value.reason == reason


def test_a_fault_can_be_limited_to_some_devices(tmp_path: Path) -> None:
    other = uuid.uuid4()
    path = tmp_path / "scenario.toml"
    path.write_text(f'[[faults]]\nkind = "glitch"\nat = "1h"\ndevices = ["{other}"]\n')
    (fault,) = load_scenario(path, START)
    assert fault.applies_to(other) and not fault.applies_to(DEVICE)


# ---- how faults are written ---------------------------------------------------------------


def test_fault_flags_and_scenario_files_say_the_same_thing(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(
        '{"faults": [{"kind": "outage", "at": "2h", "for": "45m"},'
        ' {"kind": "skew", "at": "2026-11-25T12:00:00Z", "by": "+10m"}]}'
    )
    assert load_scenario(path, START) == faults("outage@2h,for=45m", "skew@2h,by=+10m")
    (duplicates,) = faults("duplicates@1h30m,copies=3")
    assert duplicates.at == START + timedelta(hours=1, minutes=30)
    assert duplicates.duration == timedelta(hours=1) and duplicates.copies == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("outage", "expected KIND@WHEN, e.g. outage@2h,for=45m"),
        ("flood@1h", "unknown fault 'flood' (one of: reset, glitch, outage, duplicates"),
        ("glitch@1h,for=5m", "glitch takes no parameters, not 'for'"),
        ("outage@soon", "'soon' is not a"),
        ("outage@1h,for=0", "outage needs a positive duration"),
        ("duplicates@1h,copies=0", "copies must be at least 1"),
        ("skew@1h,by=10 minutes", "'10 minutes' is not a duration"),
    ],
)
def test_a_bad_fault_is_reported_clearly(spec: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_fault(spec, START)


def test_a_bad_scenario_file_names_the_fault(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[faults]]\nkind = "outage"\n')
    with pytest.raises(
        ScenarioError, match=r"s\.toml: faults\[0\]: each fault needs 'kind' and 'at'"
    ):
        load_scenario(path, START)
    path.write_text("faults = [")
    with pytest.raises(ScenarioError, match=r"s\.toml: not valid TOML"):
        load_scenario(path, START)
