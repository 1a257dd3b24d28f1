"""A background stream of meter readings, for benchmarks that time something else under load.

``BackgroundStream`` runs the publisher in a process of its own (``python -m bench.load``), so
that its Python never competes for the benchmark's own interpreter lock on the timed path.
It publishes ``rate`` readings a second, round-robin over the given meters, as one gateway
(QoS 1), on a fixed schedule: reading ``i`` is due at ``t0 + i / rate`` (absolute deadlines,
so a late wake-up is made up, not carried forward as drift). Every meter's register grows by
a plausible amount (a steady 0.4-3 kW per meter) with a ``seq`` one up per reading, in order:
nothing is quarantined, glitch-flagged or left dirty, and the hourly totals stay far under
``LOAD_LIMIT_KWH`` (no alerts).

The parent talks to the process over its stdin and stdout, one line at a time: the plan (JSON)
goes in first, ``started`` comes back once it is connected and publishing; ``mark`` starts the
measured window; closing stdin stops it, and the last line out is the summary (JSON): what was
sent, and the rate achieved over the whole run and since the mark.

    stream = BackgroundStream(broker, username, password, devices, rate=2000)
    stream.start(); ...; stream.mark(); ...; summary = stream.stop()
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any
from uuid import UUID

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.hubkit import Gateway, add_devices
from portal.broker_admin import BrokerAdmin

LOAD_USER = "bench-load"
# The background meters' settings: a steady draw of at most 3 kW (``power_kw``) stays under
# their rating (so the rollup quarantines nothing) and far under their hourly limit, the
# projection to the hour's end included (so nothing raises an alert).
LOAD_LIMIT_KWH = 10.0
LOAD_RATED_W = 5000.0
# The schedule's shortest sleep: at 2,000 readings/s a wake-up per reading would cost the
# publisher more CPU than the publishing; bursts of a few readings every 2 ms are as even as
# the hub can tell (it batches every HUB_FLUSH_INTERVAL_S, 10 ms).
MIN_TICK_S = 0.002
ROOT = Path(__file__).resolve().parent.parent


def add_load_devices(dsn: str, n: int, rate: float, owner_id: UUID | None = None) -> list[UUID]:
    """``n`` meters for a stream of ``rate`` readings/s: each reports every ``n / rate``
    seconds, its configured interval (what the hub's staleness check expects of it)."""
    return add_devices(
        dsn,
        n,
        max_hourly_kwh=LOAD_LIMIT_KWH,
        rated_power_w=LOAD_RATED_W,
        owner_id=owner_id,
        interval_s=max(1, math.ceil(n / rate)),
    )


def create_load_account(broker: Any, password: str) -> str:
    """A second gateway account (the gateway's role, ``devkit.hubkit.create_gateway``, must
    exist): every account is pinned to the client id of its name, so the stream cannot share
    the benchmark's own gateway connection."""

    async def go() -> None:
        async with BrokerAdmin(
            broker.host, broker.port, broker.admin_user, broker.portal_password
        ) as admin:
            await admin.command(
                command="createClient",
                username=LOAD_USER,
                password=password,
                clientid=LOAD_USER,
                roles=[{"rolename": "test-gateway"}],
            )

    asyncio.run(go())
    return LOAD_USER


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    username: str
    password: str
    rate: float
    devices: list[str]


def power_kw(k: int) -> float:
    """Meter k's steady draw: spread over 0.4-3 kW, the same on every run."""
    return 0.4 + 2.6 * ((k * 7919) % 1000) / 1000


class Meters:
    """The stream's readings: reading ``i`` is meter ``i % n``'s reading number ``i // n``
    (its ``seq``), timestamped when it is made, its register grown at the meter's draw."""

    def __init__(self, devices: Sequence[UUID]) -> None:
        self.devices = list(devices)
        self.topics = [readings_topic(d) for d in devices]
        self.kwh_per_s = [power_kw(k) / 3600 for k in range(len(devices))]
        self.start_kwh = [1000.0 + k % 5000 for k in range(len(devices))]
        self.epoch = time.time()

    def message(self, i: int) -> tuple[str, bytes]:
        seq, k = divmod(i, len(self.devices))
        ts = datetime.now(UTC)
        energy = self.start_kwh[k] + self.kwh_per_s[k] * (ts.timestamp() - self.epoch)
        return self.topics[k], encode_reading(Reading(self.devices[k], ts, energy, seq=seq))


class _Commands:
    """Reads the parent's lines on a thread: ``mark`` and the end of input."""

    def __init__(self, stream: IO[str], sent: Callable[[], int]) -> None:
        self.stopped = threading.Event()
        self.marked: tuple[float, int] | None = None
        self._stream = stream
        self._sent = sent
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for line in self._stream:
            if line.strip() == "mark":
                self.marked = (time.monotonic(), self._sent())
        self.stopped.set()


class Schedule:
    """Reading ``i`` is due at ``t0 + i / rate``: ``run`` sends what is due, sleeps until the
    next deadline (at least ``MIN_TICK_S``), until ``stopped``."""

    def __init__(self, rate: float, send: Callable[[int], None]) -> None:
        self.rate = rate
        self.sent = 0
        self.max_lag_s = 0.0  # the latest a reading went out after its deadline
        self._send = send

    def run(self, stopped: threading.Event) -> float:
        """Publish until ``stopped`` is set; the seconds it ran."""
        t0 = time.monotonic()
        while not stopped.is_set():
            now = time.monotonic()
            due = int((now - t0) * self.rate) + 1
            if due > self.sent:
                self.max_lag_s = max(self.max_lag_s, now - (t0 + self.sent / self.rate))
            while self.sent < due:
                self._send(self.sent)
                self.sent += 1
            time.sleep(max(MIN_TICK_S, t0 + self.sent / self.rate - time.monotonic()))
        return time.monotonic() - t0


def publish(plan: Plan, commands: IO[str], out: IO[str]) -> dict[str, float]:
    """The child's work: publish on schedule until ``commands`` ends; the summary."""
    gw = Gateway(SimpleNamespace(host=plan.host, port=plan.port), plan.username, plan.password)
    meters = Meters([UUID(d) for d in plan.devices])
    schedule = Schedule(plan.rate, lambda i: gw.publish(*meters.message(i)))
    control = _Commands(commands, lambda: schedule.sent)
    print("started", file=out, flush=True)
    seconds = schedule.run(control.stopped)
    end = time.monotonic()
    gw.close()  # waits until the broker has every reading
    n = schedule.sent
    summary = {"sent": n, "seconds": seconds, "rate": n / seconds, "max_lag_s": schedule.max_lag_s}
    if control.marked is not None:
        at, before = control.marked
        summary |= {"marked_sent": n - before, "marked_rate": (n - before) / (end - at)}
    return summary


class BackgroundStream:
    """The parent's handle on the publisher process (see the module doc)."""

    def __init__(
        self,
        broker: Any,
        username: str,
        password: str,
        devices: Sequence[UUID],
        *,
        rate: float,
    ) -> None:
        self.plan = Plan(
            broker.host, broker.port, username, password, rate, [str(d) for d in devices]
        )
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, timeout: float = 30) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.load"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(asdict(self.plan)) + "\n")
        self._proc.stdin.flush()
        line = self._readline(timeout)
        if line.strip() != "started":
            self._proc.kill()
            raise RuntimeError(f"the background stream did not start (it said {line!r})")

    def mark(self) -> None:
        """Start the measured window (its rate is ``stop()``'s ``marked_rate``)."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write("mark\n")
        self._proc.stdin.flush()

    def stop(self, timeout: float = 60) -> dict[str, float]:
        """End the stream (the process flushes what it sent to the broker); its summary."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        line = self._readline(timeout)
        self._proc.wait(timeout)
        self.kill()  # closes the pipes
        if self._proc.returncode != 0 or not line:
            raise RuntimeError(f"the background stream failed (exit {self._proc.returncode})")
        summary: dict[str, float] = json.loads(line)
        return summary

    def kill(self) -> None:
        """Stop the process if it still runs, and close its pipes (idempotent)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()

    def _readline(self, timeout: float) -> str:
        """A line from the process, or "" if none came within ``timeout`` (a hung publisher
        must not hang the benchmark)."""
        assert self._proc is not None
        stdout = self._proc.stdout
        assert stdout is not None
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return got[0] if got else ""


def main() -> None:
    plan = Plan(**json.loads(sys.stdin.readline()))
    summary = publish(plan, sys.stdin, sys.stdout)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
