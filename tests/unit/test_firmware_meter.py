"""The reference meter against an in-memory broker, in simulated time."""

from __future__ import annotations

import itertools
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from common.backoff import BackoffPolicy
from contract.codec import decode_status, encode_cmd_config, encode_cmd_resend
from contract.payloads import Reading
from contract.readings import decode_readings
from contract.topics import cmd_topic, status_topic
from firmware_stub.buffer import ReadingBuffer
from firmware_stub.clock import ManualClock
from firmware_stub.fake import FakeBroker, FakeClient
from firmware_stub.meter import Meter
from firmware_stub.model import Measurement, MeterConfig, State
from firmware_stub.paho_session import publish_outcome
from firmware_stub.storage import MemoryRecordStore
from firmware_stub.transport import PublishOutcome
from firmware_stub.wire import Encoder, encode_classic_batch, encode_v1

START = datetime(2026, 11, 25, 10, 3, tzinfo=UTC)
FAR = datetime(2100, 1, 1, tzinfo=UTC)


class Rig:
    """One meter, its fake broker and a manual clock; ``run`` advances time in steps."""

    def __init__(
        self,
        *,
        interval_s: int = 600,
        store: MemoryRecordStore | None = None,
        broker: FakeBroker | None = None,
        encoder: Encoder = encode_v1,
        **config: object,
    ) -> None:
        self.device_id = uuid.UUID("5c2494a3-0000-4000-8000-000000000001")
        self.clock = ManualClock(START)
        self.broker = broker or FakeBroker()
        self.client: FakeClient = self.broker.client(str(self.device_id), "pw")
        self.store = store or MemoryRecordStore()
        self.buffer = ReadingBuffer(self.store)
        self.meter = Meter(
            self.device_id,
            client=self.client,
            clock=self.clock,
            buffer=self.buffer,
            sensor=self.register,
            config=MeterConfig(interval_s=interval_s, **config),  # type: ignore[arg-type]
            encoder=encoder,
            rng=random.Random(7),
        )

    def register(self, ts: datetime) -> Measurement:
        # 0.5 kWh per 10 minutes from 100 kWh at START: a value derived from the slot time.
        return Measurement(100.0 + (ts - START).total_seconds() / 1200.0, 3000.0)

    def start(self) -> None:
        self.meter.start()
        self.step()

    def step(self) -> None:
        self.meter.poll()
        while self.broker.deliver():
            self.meter.poll()

    def run(self, seconds: float, step: float = 1.0) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.step()

    def readings(self) -> list[list[Reading]]:
        return [
            decode_readings(self.device_id, p.payload, now=FAR)
            for p in self.broker.topics("/readings")
        ]


def seqs(messages: list[list[Reading]]) -> list[int]:
    return [r.seq for m in messages for r in m if r.seq is not None]


def test_readings_follow_the_interval_grid_in_the_v1_format_with_a_seq() -> None:
    rig = Rig()
    rig.start()
    rig.run(3600, step=5)
    messages = rig.readings()
    assert all(len(m) == 1 for m in messages)
    readings = [m[0] for m in messages]
    assert [r.ts for r in readings] == [START] + [
        datetime(2026, 11, 25, 10, 10, tzinfo=UTC) + timedelta(minutes=10 * i) for i in range(6)
    ]
    assert [r.seq for r in readings] == list(range(7))
    assert [r.energy_kwh for r in readings] == [rig.register(r.ts).energy_kwh for r in readings]
    assert rig.buffer.pending_count == 0
    assert rig.meter.stats.acked == 7


def test_birth_is_retained_online_and_the_last_will_retained_offline() -> None:
    rig = Rig()
    rig.start()
    topic = status_topic(rig.device_id)
    assert decode_status(rig.broker.retained[topic]) == ("online", START)
    rig.broker.kill(rig.client)
    assert decode_status(rig.broker.retained[topic])[0] == "offline"
    assert rig.broker.topics("/status")[-1].retain


def test_a_clean_stop_sends_offline_with_its_time_and_no_last_will() -> None:
    rig = Rig()
    rig.start()
    rig.run(60)
    rig.meter.stop()
    rig.step()
    assert rig.meter.state is State.STOPPED
    statuses = [decode_status(p.payload) for p in rig.broker.topics("/status")]
    assert statuses == [("online", START), ("offline", START + timedelta(seconds=60))]
    assert not rig.client.connected


def test_readings_made_during_an_outage_are_flushed_in_order_as_arrays_of_at_most_1000() -> None:
    rig = Rig(interval_s=1, backoff=BackoffPolicy(initial_s=1, maximum_s=4))
    rig.start()
    rig.run(10)
    rig.broker.stop()
    rig.run(2500)
    assert rig.meter.state is State.WAITING
    buffered = rig.buffer.pending_count
    assert buffered >= 2499
    before = len(rig.readings())
    rig.broker.start()
    rig.run(10)
    flush = rig.readings()[before:]
    sizes = [len(m) for m in flush]
    assert max(sizes) == 1000 and all(s <= 1000 for s in sizes)
    flushed = seqs(flush)
    assert flushed == sorted(flushed)
    # Every reading arrives; only one that was in flight when the broker went down may repeat.
    everything = seqs(rig.readings())
    assert set(everything) == set(range(rig.meter.stats.produced))
    assert len(everything) - len(set(everything)) <= 1
    assert rig.buffer.pending_count == 0


def test_reconnect_delays_grow_exponentially_with_jitter_up_to_the_ceiling() -> None:
    rig = Rig(backoff=BackoffPolicy(initial_s=1, maximum_s=30, factor=2, jitter=0.5))
    rig.broker.up = False
    rig.start()
    attempts: list[float] = []
    seen = rig.client.attempts
    for _ in range(3000):
        rig.clock.advance(0.1)
        rig.step()
        if rig.client.attempts != seen:
            seen = rig.client.attempts
            attempts.append(rig.clock.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    for i, gap in enumerate(gaps[:4]):
        ceiling = 2.0 ** (i + 1)
        assert ceiling / 2 - 0.11 <= gap <= ceiling + 0.11
    assert all(15 - 0.11 <= g <= 30 + 0.11 for g in gaps[5:])
    assert len({round(g, 1) for g in gaps[5:]}) > 1  # jittered, not lock-step


def test_a_reading_stays_buffered_until_its_puback_and_is_resent_if_it_never_came() -> None:
    rig = Rig(backoff=BackoffPolicy(initial_s=1, maximum_s=1))
    rig.broker.hold_acks = True
    rig.start()
    rig.run(1800, step=10)
    assert rig.buffer.pending_count == 4
    rig.broker.kill(rig.client)  # the PUBACKs never arrive
    rig.broker.hold_acks = False
    rig.run(5)
    assert rig.meter.state is State.CONNECTED
    assert rig.buffer.pending_count == 0
    resent = rig.readings()[-1]
    assert [r.seq for r in resent] == [0, 1, 2, 3]


def test_resend_command_republishes_remembered_readings_from_the_seq() -> None:
    rig = Rig()
    rig.start()
    rig.run(6000, step=10)
    before = len(rig.readings())
    rig.broker.send(cmd_topic(rig.device_id), encode_cmd_resend(3))
    rig.step()
    again = rig.readings()[before:]
    assert seqs(again) == list(range(3, rig.meter.stats.produced))
    assert rig.meter.stats.resent == rig.meter.stats.produced - 3


def test_config_command_changes_the_reading_interval() -> None:
    rig = Rig()
    rig.start()
    rig.broker.send(cmd_topic(rig.device_id), encode_cmd_config(60))
    rig.step()
    rig.run(300, step=5)
    times = [m[0].ts for m in rig.readings()]
    assert times[1:] == [START + timedelta(minutes=m) for m in range(1, 6)]


def test_a_bad_command_is_ignored_and_counted() -> None:
    rig = Rig()
    rig.start()
    rig.broker.send(cmd_topic(rig.device_id), b'{"cmd": "reboot"}')
    rig.step()
    assert rig.meter.stats.bad_commands == 1
    assert rig.meter.state is State.CONNECTED


def test_refused_credentials_are_reported_and_not_retried() -> None:
    rig = Rig(broker=FakeBroker(passwords={}))
    rig.start()
    rig.run(600, step=10)
    assert rig.meter.state is State.REFUSED
    assert rig.client.attempts == 1


def test_a_restarted_meter_continues_the_seq_and_delivers_what_it_had_buffered() -> None:
    store = MemoryRecordStore()
    first = Rig(store=store)
    first.broker.up = False
    first.start()
    first.run(3000, step=10)
    produced = first.meter.stats.produced
    first.meter.stop()  # clean: the buffer is closed
    second = Rig(store=store)
    second.start()
    second.run(30)
    assert seqs(second.readings()) == list(range(produced + 1))
    assert second.buffer.pending_count == 0


def test_a_late_poll_skips_missed_slots_instead_of_inventing_readings() -> None:
    rig = Rig()
    rig.start()
    rig.clock.advance(3 * 3600)
    rig.step()
    assert rig.meter.stats.missed_slots == 17
    assert [m[0].ts for m in rig.readings()][-1] == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def test_the_classic_format_carries_the_device_id_and_flushes_as_an_array() -> None:
    rig = Rig(encoder=encode_classic_batch)
    rig.broker.up = False
    rig.start()
    rig.run(1200, step=10)
    rig.broker.up = True
    rig.run(120)
    (flush,) = rig.readings()
    assert [r.source for r in flush] == ["classic"] * 3
    assert [r.energy_kwh for r in flush] == [100.0, 100.35, 100.85]
    payload = rig.broker.topics("/readings")[0].payload
    assert str(rig.device_id).encode() in payload


# ---- "no matching subscribers" (MQTT 5 PUBACK 0x10): EMS was not subscribed ---------------


def test_readings_nobody_was_subscribed_to_stay_buffered_and_arrive_once_subscribers_are_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(backoff=BackoffPolicy(initial_s=1, maximum_s=30))
    rig.broker.no_subscribers = True  # e.g. a broker restart the hubs have not caught up with
    with caplog.at_level(logging.DEBUG, logger="firmware_stub.meter"):
        rig.start()
        rig.run(1800, step=5)
        assert rig.readings() == []  # the broker dropped every one of them...
        assert rig.buffer.pending_count == rig.meter.stats.produced == 4  # ...the meter did not
        assert rig.buffer.acked_seq == -1 and rig.meter.stats.acked == 0
        assert rig.meter.stats.unrouted > 4  # retried, each try counted
        # Retried with a growing back-off, not hammered: a try every 15..30 s at the ceiling.
        tried = len(rig.broker.unrouted)
        rig.run(600, step=5)
        assert 600 / 30 - 1 <= len(rig.broker.unrouted) - tried <= 600 / 15 + 1
        rig.broker.no_subscribers = False
        rig.run(60, step=5)
    assert rig.meter.state is State.CONNECTED
    assert seqs(rig.readings()) == list(range(rig.meter.stats.produced)) == [0, 1, 2, 3, 4]
    assert rig.buffer.pending_count == 0 and rig.meter.stats.acked == 5
    assert rig.meter.stats.rejected == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no matching subscribers" in warnings[0].getMessage()
    assert "reach a subscriber again" in caplog.records[-1].getMessage()


def test_a_later_puback_does_not_move_the_acknowledged_prefix_past_an_unrouted_publish() -> None:
    rig = Rig(backoff=BackoffPolicy(initial_s=60, maximum_s=60, jitter=0))
    rig.start()
    assert rig.buffer.acked_seq == 0
    rig.broker.hold_acks = True
    rig.broker.no_subscribers = True
    rig.run(600, step=10)  # seq 1 published and dropped: nobody subscribed
    rig.broker.no_subscribers = False
    rig.run(1800, step=10)  # seqs 2, 3, 4 published and routed
    assert [len(rig.broker.unrouted), seqs(rig.readings())] == [1, [0, 2, 3, 4]]
    rig.broker.hold_acks = False
    rig.broker.release_acks()
    rig.broker.deliver()  # PUBACKs: seq 1 "no matching subscribers", then 2, 3, 4 success
    assert rig.buffer.acked_seq == 0
    assert rig.buffer.pending_count == 4
    # A routed PUBACK says subscribers are back: the meter resends from the prefix at once
    # (not after its 60 s back-off), in order; the hub absorbs seqs 2-4 arriving twice.
    rig.step()
    assert seqs(rig.readings()) == [0, 2, 3, 4, 1, 2, 3, 4]
    assert rig.buffer.acked_seq == 4 and rig.buffer.pending_count == 0
    assert rig.meter.stats.acked == 5 and rig.meter.stats.unrouted == 1


def test_a_reconnect_while_backing_off_resends_at_once() -> None:
    rig = Rig(backoff=BackoffPolicy(initial_s=1, maximum_s=60, jitter=0))
    rig.broker.no_subscribers = True
    rig.start()
    rig.run(64)  # tries at 0, 1, 3, 7, 15, 31, 63 s: the next one 60 s later
    assert rig.meter.stats.unrouted == 7
    rig.broker.kill(rig.client)
    rig.broker.no_subscribers = False
    rig.run(5)  # reconnected after the first (1 s) connection back-off
    assert rig.meter.state is State.CONNECTED
    assert seqs(rig.readings()) == [0]
    assert rig.buffer.pending_count == 0


def test_the_puback_reason_code_becomes_the_publish_outcome() -> None:
    def puback(code: int) -> PublishOutcome:
        return publish_outcome(ReasonCode(PacketTypes.PUBACK, identifier=code))

    assert puback(0x00) is PublishOutcome.ACCEPTED
    assert puback(0x10) is PublishOutcome.UNROUTED  # not a failure to MQTT, yet not delivered
    assert puback(0x87) is PublishOutcome.REFUSED  # not authorised
    assert puback(0x97) is PublishOutcome.REFUSED  # quota exceeded
