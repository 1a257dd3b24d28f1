"""The writer's failure paths, on the in-memory storage (hub.storage_fake): no database.

Each test runs a real ``BatchWriter`` thread on a real ``Intake`` and watches what reaches the
broker (the acknowledgements) and what the storage holds. Messages are delivered before the
writer starts, so the batches it takes are known.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from common.backoff import BackoffPolicy
from contract.codec import encode_status
from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic, status_topic
from devkit.helpers import wait_for
from hub.batch import Message, MessageKind, classify
from hub.buffer import Intake
from hub.metrics import HubMetrics
from hub.registry import DeviceInfo, DeviceRegistry
from hub.settings import HubSettings
from hub.storage_fake import FakeStorage
from hub.writer import Ack, BatchWriter

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ARRIVAL = T0 + timedelta(hours=1)  # the readings' "now" when they are classified
# Retries without waiting: the back-off's timings are not what these tests are about.
NO_WAIT = BackoffPolicy(initial_s=0.001, maximum_s=0.001, jitter=0.0)


def device(n: int) -> DeviceInfo:
    return DeviceInfo(UUID(int=n), None, float("inf"), "cumulative", None, 60)


def reading(mid: int, dev: DeviceInfo, minute: int) -> Message:
    r = Reading(dev.device_id, T0 + timedelta(minutes=minute), float(minute))
    return Message(readings_topic(dev.device_id), encode_reading(r), mid, 1, 0.0)


class Rig:
    """A writer thread on ``storage``, with what it acknowledges recorded."""

    def __init__(self, storage: FakeStorage, *, batch_size: int) -> None:
        self.storage = storage
        self._sent: list[list[Ack]] = []
        self.intake = Intake(10_000, self._sent.append)
        self.registry = DeviceRegistry()
        # max_lateness: the readings' fixed dates stay acceptable whatever the date today.
        settings = HubSettings(
            database_url="unused",
            mqtt_username="unused",
            mqtt_password="unused",
            batch_size=batch_size,
            max_lateness=timedelta(days=365 * 100),
        )
        self.metrics = HubMetrics()
        self.writer = BatchWriter(
            settings,
            storage,
            self.registry,
            self.metrics,
            self.intake,
            db_retry=NO_WAIT,
            connect_retry=NO_WAIT,
            rng=random.Random(14),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.writer.run, args=(self.stop,), daemon=True)

    def deliver(self, messages: list[Message]) -> None:
        """As hub.app does on the MQTT reader thread."""
        classify(messages, now=ARRIVAL, max_future=timedelta(minutes=5))
        self.intake.inbox.put_many(messages)

    def start(self) -> Rig:
        self.thread.start()
        # Not db_ok: a batch already waiting may meet an outage before anyone looks.
        devices = len(self.storage.devices)
        wait_for(lambda: len(self.registry) == devices, what="the writer to load the devices")
        return self

    def outages(self) -> float:
        """Failed commits counted as the database being unavailable."""
        return self.metrics.registry.get_sample_value("hub_flush_failures_total") or 0.0

    def acks(self) -> list[Ack]:
        return [ack for batch in list(self._sent) for ack in batch]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        if rig.thread.is_alive():
            rig.close()


def rig_for(rigs: list[Rig], storage: FakeStorage, *, batch_size: int = 64) -> Rig:
    rigs.append(Rig(storage, batch_size=batch_size))
    return rigs[-1]


def test_a_poisoned_message_is_isolated_and_dead_lettered_alone(rigs: list[Rig]) -> None:
    """One message of 64 the database refuses: bisecting finds it; it alone is dead-lettered
    (storage_error) and the other 63 are stored; all 64 are acknowledged once, in order."""
    devices = [device(n) for n in range(1, 9)]
    batch = [reading(mid, devices[mid % 8], mid) for mid in range(1, 65)]
    poison = batch[36]  # mid 37: the fifth device's reading at minute 37
    poison_ts = T0 + timedelta(minutes=37)
    storage = FakeStorage(devices)
    storage.fail(
        psycopg.errors.NumericValueOutOfRange,
        times=None,
        when=lambda b: any(r.ts == poison_ts for r in b.readings),
    )
    rig = rig_for(rigs, storage)
    rig.deliver(batch)
    rig.start()

    wait_for(lambda: len(rig.acks()) == 64, what="all 64 acknowledged")
    assert rig.acks() == [(mid, 1) for mid in range(1, 65)]
    assert [(d.topic, d.reason) for d in storage.dead_letters] == [(poison.topic, "storage_error")]
    assert "fake commit_batch failure" in storage.dead_letters[0].detail
    assert len(storage.readings) == 63
    assert (devices[37 % 8].device_id, poison_ts) not in storage.readings
    assert storage.resets > 0  # the failed transaction's connection was dropped


def test_a_deadlocked_batch_is_retried_whole(rigs: list[Rig]) -> None:
    """Deadlocked twice, then through: stored once by one commit, each message acknowledged
    once, nothing dead-lettered, nothing split."""
    dev = device(1)
    batch = [reading(mid, dev, mid) for mid in range(1, 6)]
    storage = FakeStorage([dev])
    deadlock = storage.fail(psycopg.errors.DeadlockDetected, times=2)
    rig = rig_for(rigs, storage)
    rig.deliver(batch)
    rig.start()

    wait_for(lambda: len(rig.acks()) == 5, what="the batch acknowledged")
    assert deadlock.raised == 2
    assert (storage.calls["commit_batch"], storage.commits) == (3, 1)
    assert len(storage.readings) == 5
    assert storage.dead_letters == []
    assert rig.acks() == [(mid, 1) for mid in range(1, 6)]
    # A deadlock is not an outage (DeadlockDetected is an OperationalError: caught as one, it
    # would be retried too, but after dropping the connection and backing off).
    assert (rig.outages(), storage.resets) == (0, 0)
    assert rig.writer.db_ok


def test_a_device_deleted_behind_the_registrys_back_has_its_readings_dead_lettered_as_unknown(
    rigs: list[Rig],
) -> None:
    """The registry still has the device (its deletion event not here yet) but the database
    has not: the batch fails its foreign key; the writer asks which devices exist, forgets
    the deleted one, and its readings go to dead letters as unknown_device, the others in."""
    gone, kept = device(1), device(2)
    storage = FakeStorage([gone, kept])
    rig = rig_for(rigs, storage).start()
    assert rig.registry.get(gone.device_id) is not None
    storage.delete_device(gone.device_id)

    batch = [reading(mid, gone if mid % 2 else kept, mid) for mid in range(1, 7)]
    rig.deliver(batch)

    wait_for(lambda: len(rig.acks()) == 6, what="the batch acknowledged")
    assert rig.acks() == [(mid, 1) for mid in range(1, 7)]
    assert (
        sorted((d.topic, d.reason) for d in storage.dead_letters)
        == [(readings_topic(gone.device_id), "unknown_device")] * 3
    )
    assert sorted(ts.minute for _, ts in storage.readings) == [2, 4, 6]
    assert {device_id for device_id, _ in storage.readings} == {kept.device_id}
    assert rig.registry.get(gone.device_id) is None


def test_an_unreachable_database_holds_every_acknowledgement_until_it_is_back(
    rigs: list[Rig],
) -> None:
    """Three batches wait while the database is down (retried with back-off): nothing is
    acknowledged; once it is back, all ten are stored and acknowledged, in order."""
    dev = device(1)
    storage = FakeStorage([dev])
    outage = storage.fail(psycopg.OperationalError, times=None)
    rig = rig_for(rigs, storage, batch_size=4)
    rig.deliver([reading(mid, dev, mid) for mid in range(1, 11)])
    rig.start()

    wait_for(lambda: outage.raised >= 5, what="several attempts against the outage")
    assert rig.acks() == []
    assert storage.readings == {}
    assert not rig.writer.db_ok
    assert rig.outages() >= 5

    outage.clear()
    wait_for(lambda: len(rig.acks()) == 10, what="every message acknowledged")
    assert rig.acks() == [(mid, 1) for mid in range(1, 11)]
    assert len(storage.readings) == 10
    assert storage.dead_letters == []
    assert rig.writer.db_ok


def test_stopping_while_the_database_is_down_acknowledges_nothing(rigs: list[Rig]) -> None:
    """Stopped mid-outage: the writer returns without acknowledging its readings or its
    status message, so the broker redelivers them to the next session."""
    dev = device(1)
    storage = FakeStorage([dev])
    outage = storage.fail(psycopg.OperationalError, times=None)
    storage.fail(psycopg.OperationalError, method="set_status", times=None)
    rig = rig_for(rigs, storage, batch_size=4)
    status = Message(status_topic(dev.device_id), encode_status("offline", None), 7, 1, 0.0)
    rig.deliver([reading(mid, dev, mid) for mid in range(1, 7)] + [status])
    rig.start()

    wait_for(lambda: outage.raised >= 2, what="attempts against the outage")
    rig.close()
    assert rig.acks() == []
    assert storage.readings == {}
    assert storage.status == {}


def test_messages_are_classified_once_on_arrival_and_routed_by_kind(rigs: list[Rig]) -> None:
    """classify() sets the kind the writer routes on: a status reaches set_status, a reading
    the batch commit, a topic that is neither is dead-lettered as bad_topic; all acknowledged."""
    dev = device(1)
    storage = FakeStorage([dev])
    rig = rig_for(rigs, storage)
    status = Message(status_topic(dev.device_id), encode_status("offline", None), 1, 1, 0.0)
    stray = Message("ems/v1/meters/not-a-uuid/readings", b"{}", 3, 1, 0.0)
    batch = [status, reading(2, dev, 2), stray]
    rig.deliver(batch)
    assert [m.kind for m in batch] == [
        MessageKind.STATUS,
        MessageKind.READINGS,
        MessageKind.READINGS,
    ]
    rig.start()

    wait_for(lambda: len(rig.acks()) == 3, what="the batch acknowledged")
    assert storage.status == {dev.device_id: "online"}  # offline, then the reading's sign of life
    assert storage.calls["set_status"] == 1
    assert len(storage.readings) == 1
    assert [(d.topic, d.reason) for d in storage.dead_letters] == [(stray.topic, "bad_topic")]


def test_an_unclassified_message_is_a_bug_not_input(rigs: list[Rig]) -> None:
    """A message that skipped classify() stops the writer loudly (the hub then restarts)
    rather than being guessed at, and is not acknowledged."""
    rig = rig_for(rigs, FakeStorage([device(1)]))
    unclassified = reading(1, device(1), 1)
    with pytest.raises(ValueError, match="unclassified message"):
        rig.writer._process([unclassified], rig.stop)


def test_a_batch_books_the_writers_stages(rigs: list[Rig]) -> None:
    """Waiting for the batch, preparing it and acknowledging it are booked to their stages
    (hub_stage_seconds_total; the database's stages are the storage's to book)."""
    dev = device(1)
    storage = FakeStorage([dev])
    rig = rig_for(rigs, storage)
    rig.deliver([reading(mid, dev, mid) for mid in range(1, 6)])
    rig.start()

    def seconds(stage: str) -> float:
        value = rig.metrics.registry.get_sample_value("hub_stage_seconds_total", {"stage": stage})
        return value or 0.0

    wait_for(lambda: seconds("ack") > 0, what="the batch's acknowledgement booked")
    assert rig.acks() == [(mid, 1) for mid in range(1, 6)]
    assert seconds("take") > 0
    assert seconds("prepare") > 0
