"""The reference firmware on its two MQTT clients, against the real Mosquitto."""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from common.backoff import BackoffPolicy
from contract.codec import decode_status, encode_cmd_resend
from contract.readings import decode_readings
from contract.topics import cmd_topic
from device_sim.scheduler import Scheduler
from devkit.helpers import Subscriber, publish_as, wait_for
from firmware_stub.aio_client import AsyncioMqttClient
from firmware_stub.buffer import ReadingBuffer
from firmware_stub.clock import SystemClock
from firmware_stub.meter import Meter
from firmware_stub.model import Measurement, MeterConfig, State
from firmware_stub.paho_client import PahoClient, run_forever
from firmware_stub.paho_session import BrokerAddress
from firmware_stub.storage import FileRecordStore, MemoryRecordStore
from portal.broker_admin import BrokerAdmin
from tests.conftest import BrokerInfo

FAR = datetime(2100, 1, 1, tzinfo=UTC)


def admin(broker: BrokerInfo) -> BrokerAdmin:
    return BrokerAdmin(broker.host, broker.port, broker.portal_user, broker.portal_password)


def new_meter(broker: BrokerInfo) -> tuple[uuid.UUID, str]:
    device_id, password = uuid.uuid4(), secrets.token_urlsafe(16)

    async def create() -> None:
        async with admin(broker) as a:
            await a.create_meter(device_id, password)

    asyncio.run(create())
    return device_id, password


def register(ts: datetime) -> Measurement:
    return Measurement(round(ts.timestamp() / 3600, 6), 1000.0)


def test_the_pc_client_publishes_answers_resend_and_stops_cleanly(
    broker: BrokerInfo, tmp_path: Path
) -> None:
    device_id, password = new_meter(broker)
    address = BrokerAddress(broker.host, broker.port, str(device_id), password, str(device_id))
    client = PahoClient(address)
    clock = SystemClock()
    store = FileRecordStore(tmp_path / "meter.buf")
    meter = Meter(
        device_id,
        client=client,
        clock=clock,
        buffer=ReadingBuffer(store),
        sensor=register,
        config=MeterConfig(interval_s=1),
    )
    stop = threading.Event()
    hub = Subscriber(
        broker.host, broker.port, broker.hub_user, broker.hub_password, "ems/v1/meters/+/readings"
    )
    device = threading.Thread(target=run_forever, args=(meter, client, clock, stop.is_set))
    device.start()
    try:

        def seqs() -> list[int | None]:
            return [
                r.seq
                for m in hub.received()
                for r in decode_readings(device_id, m.payload, now=FAR)
            ]

        wait_for(lambda: len(seqs()) >= 3, 15, "three readings")
        publish_as(
            broker, broker.hub_user, broker.hub_password, cmd_topic(device_id), encode_cmd_resend(0)
        )
        wait_for(lambda: seqs().count(0) == 2, 10, "the readings resent from seq 0")
    finally:
        stop.set()
        device.join(15)
        hub.close()
    assert meter.state is State.STOPPED
    assert meter.stats.resent >= 3
    status = Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        f"ems/v1/meters/{device_id}/status",
    )
    try:
        (message,) = wait_for(status.received, what="the retained status")
        state, ts = decode_status(message.payload)
        assert state == "offline" and ts is not None
    finally:
        status.close()
    # Stopped cleanly: nothing pending, and the file says so (no seq gap on the next start).
    reopened = ReadingBuffer(FileRecordStore(tmp_path / "meter.buf"))
    assert reopened.pending_count == 0 and not reopened.recovered_unclean


def test_a_rotated_password_stops_the_meter_with_a_clear_state_not_endless_retries(
    broker: BrokerInfo,
) -> None:
    device_id, password = new_meter(broker)

    async def scenario() -> Meter:
        loop = asyncio.get_running_loop()
        address = BrokerAddress(broker.host, broker.port, str(device_id), password, str(device_id))
        meter = Meter(
            device_id,
            client=AsyncioMqttClient(address, loop=loop),
            clock=SystemClock(),
            buffer=ReadingBuffer(MemoryRecordStore()),
            sensor=register,
            config=MeterConfig(interval_s=1),
            rng=random.Random(3),
        )
        # Driven the way ems-sim drives its fleet: the scheduler polls the meter when due.
        scheduler = Scheduler(loop)
        meter.on_timer = lambda at: scheduler.wake(meter, at)
        meter.start()
        scheduler.wake(meter, loop.time())
        runner = loop.create_task(scheduler.run())

        async def until(state: State, seconds: float) -> None:
            await asyncio.to_thread(wait_for, lambda: meter.state is state, seconds, state.value)

        try:
            await until(State.CONNECTED, 10)
            async with admin(broker) as a:
                await a.set_meter_password(device_id, secrets.token_urlsafe(16))
            await until(State.REFUSED, 20)
        finally:
            runner.cancel()
        return meter

    meter = asyncio.run(scenario())
    assert meter.stats.connects == 1 and meter.stats.disconnects == 1


def test_readings_published_while_no_hub_is_subscribed_all_arrive_once_one_is(
    broker: BrokerInfo,
) -> None:
    """Mosquitto answers a QoS 1 reading that matches no subscription with PUBACK 0x10 "no
    matching subscribers" and drops it (after a restart, until the hubs have subscribed
    again): the meter keeps such readings and sends them again until a hub takes them."""
    device_id, password = new_meter(broker)
    address = BrokerAddress(broker.host, broker.port, str(device_id), password, str(device_id))
    client = PahoClient(address)
    clock = SystemClock()
    meter = Meter(
        device_id,
        client=client,
        clock=clock,
        buffer=ReadingBuffer(MemoryRecordStore()),
        sensor=register,
        config=MeterConfig(interval_s=1, backoff=BackoffPolicy(initial_s=0.2, maximum_s=1)),
        rng=random.Random(5),
    )
    stop = threading.Event()
    device = threading.Thread(target=run_forever, args=(meter, client, clock, stop.is_set))
    device.start()
    try:
        wait_for(lambda: meter.stats.messages >= 3, 15, "readings nobody is subscribed to")
        hub = Subscriber(
            broker.host,
            broker.port,
            broker.hub_user,
            broker.hub_password,
            "$share/hub/ems/v1/meters/+/readings",
        )
        try:
            wait_for(lambda: meter.stats.acked >= 5, 15, "readings acknowledged")
            stop.set()
            device.join(15)
            assert meter.state is State.STOPPED

            def seqs() -> set[int | None]:
                return {
                    r.seq
                    for m in hub.received()
                    for r in decode_readings(device_id, m.payload, now=FAR)
                }

            # Every reading the broker acknowledged reached the hub, the first ones included.
            acked = set(range(meter.buffer.acked_seq + 1))
            wait_for(lambda: seqs() >= acked, 10, f"seqs 0..{meter.buffer.acked_seq} at the hub")
            assert meter.stats.unrouted >= 3
        finally:
            hub.close()
    finally:
        stop.set()
        device.join(15)
