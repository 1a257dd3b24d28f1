"""N meters in one process: each a firmware ``Meter`` with its own connection and credentials,
its register driven by a synthetic profile or a replay, faults wrapped around it as asked."""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import ssl
from pathlib import Path

from device_sim.delivery_faults import WIRE_KINDS, FaultyClient
from device_sim.disk import BackgroundRecordStore, DiskWriter
from device_sim.plan import MeterPlan, RunPlan
from device_sim.progress import FaultTotals, Totals, fault_totals, totals
from device_sim.scheduler import Pollable, Scheduler
from device_sim.sensor_faults import FaultySensor
from device_sim.sources import RegisterSensor, make_source
from firmware_stub.aio_client import AsyncioMqttClient
from firmware_stub.buffer import ReadingBuffer
from firmware_stub.clock import ScaledClock
from firmware_stub.meter import Meter
from firmware_stub.model import MeterConfig, Sensor, State
from firmware_stub.paho_session import BrokerAddress
from firmware_stub.storage import MemoryRecordStore, RecordStore
from firmware_stub.transport import MqttClient
from firmware_stub.wire import ENCODERS


class FleetError(RuntimeError):
    """The fleet cannot start; the message says why and what to do."""


def ensure_fd_limit(meters: int) -> None:
    """Each meter holds a socket: raise the soft descriptor limit as far as the fleet needs."""
    needed = meters + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise FleetError(
            f"{meters} meters need about {needed} file descriptors, but this process may open "
            f"at most {hard} - raise the hard limit (ulimit -Hn, or LimitNOFILE= under systemd)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise FleetError(f"cannot load the CA file {ca_file}: {exc}") from None


class SimMeter:
    """A meter and, when the scenario has wire faults, the client wrapper injecting them."""

    def __init__(self, plan: MeterPlan, meter: Meter, faults: FaultyClient | None) -> None:
        self.plan = plan
        self.meter = meter
        self.faults = faults

    def poll(self) -> float:
        wake = self.meter.poll()
        if self.faults is not None:
            wake = min(wake, self.faults.poll())
        return wake


class Fleet:
    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.meters: list[SimMeter] = []
        self.clock = ScaledClock(plan.start, plan.speed)
        self._writer: DiskWriter | None = None
        self._gate: asyncio.Semaphore | None = None
        self._scheduler: Scheduler | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Build every meter and start it (first reading now, connection attempt now)."""
        plan = self.plan
        ensure_fd_limit(len(plan.meters))
        loop = asyncio.get_running_loop()
        tls = tls_context(plan.broker.ca_file) if plan.broker.tls else None
        if plan.state_dir is not None:
            plan.state_dir.mkdir(parents=True, exist_ok=True)
            self._writer = DiskWriter()
        self._gate = asyncio.Semaphore(plan.connect_concurrency)
        self._scheduler = scheduler = Scheduler(loop)
        self.clock = ScaledClock(plan.start, plan.speed)  # simulated time starts now
        for meter_plan in plan.meters:
            sim = self._build(meter_plan, loop, tls)
            self.meters.append(sim)
            # Without faults the meter itself is polled: one call less per reading.
            target: Pollable = sim if sim.faults is not None else sim.meter
            sim.meter.on_timer = lambda at, target=target: scheduler.wake(target, at)
            if sim.faults is not None:
                sim.faults.on_timer = lambda at, target=target: scheduler.wake(target, at)
            sim.meter.start(plan.start)
            scheduler.wake(target, loop.time())
        self._task = loop.create_task(scheduler.run(), name="ems-sim-scheduler")

    def _build(
        self, mp: MeterPlan, loop: asyncio.AbstractEventLoop, tls: ssl.SSLContext | None
    ) -> SimMeter:
        plan = self.plan
        store: RecordStore = MemoryRecordStore()
        if plan.state_dir is not None and self._writer is not None:
            store = BackgroundRecordStore(plan.state_dir / f"{mp.device_id}.buf", self._writer)
        buffer = ReadingBuffer(store, capacity=plan.buffer_capacity)
        last = buffer.last()
        source = make_source(
            mp.source,
            seed=mp.seed,
            timezone=mp.timezone,
            replay_file=mp.replay_file,
            origin=plan.start,
        )
        sensor: Sensor = RegisterSensor(
            source,
            start=plan.start,
            last=(last.ts, last.energy_kwh) if last is not None else None,
        )
        faults = [f for f in plan.faults if f.applies_to(mp.device_id)]
        if faults:
            sensor = FaultySensor(sensor, faults)
        address = BrokerAddress(
            plan.broker.host,
            plan.broker.port,
            username=str(mp.device_id),
            password=mp.password,
            client_id=str(mp.device_id),
            tls=tls,
        )
        real = AsyncioMqttClient(address, loop=loop, gate=self._gate)
        client: MqttClient = real
        wire = None
        if any(f.kind in WIRE_KINDS for f in faults):
            client = wire = FaultyClient(real, self.clock, faults, mp.device_id)
        meter = Meter(
            mp.device_id,
            client=client,
            clock=self.clock,
            buffer=buffer,
            sensor=sensor,
            config=MeterConfig(interval_s=mp.interval_s, backoff=plan.backoff),
            encoder=ENCODERS[mp.format],
            rng=random.Random(mp.seed),  # noqa: S311 - jitter, not security
        )
        return SimMeter(mp, meter, wire)

    def totals(self) -> Totals:
        return totals([s.meter for s in self.meters])

    def asked_per_s(self) -> float:
        """Readings per real second the running meters are asked for (their schedules)."""
        speed = self.clock.speed
        return sum(
            speed / s.meter.schedule.interval.total_seconds()
            for s in self.meters
            if s.meter.schedule.next_slot is not None
        )

    def take_lag(self) -> float:
        """The worst poll lag since the last call (see ``Scheduler.lag``)."""
        return self._scheduler.take_lag() if self._scheduler is not None else 0.0

    def fault_totals(self) -> FaultTotals | None:
        clients = [s.faults for s in self.meters if s.faults is not None]
        return fault_totals(clients) if clients else None

    async def stop(self, grace: float = 10.0) -> None:
        """Each meter sends its offline status and disconnects (each within its own stop
        timeout); buffers are closed."""
        for sim in self.meters:
            sim.meter.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline and any(  # noqa: ASYNC110 - meters have no stop event
            s.meter.state is not State.STOPPED for s in self.meters
        ):
            await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
