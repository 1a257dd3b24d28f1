"""Benchmark: many simulated meters in one process against a throwaway Mosquitto.

Prints the time to connect every meter, readings asked for and produced per second, slots
missed, CPU of the simulator and of Mosquitto, the simulator's CPU per reading and its peak
memory (targets: 10,000 connected meters in one process under 1 GB, 10,000 readings/s).
Figures only, no pass or fail. Credentials are written into the broker's dynamic-security
file before it starts, the way the test harness seeds its service accounts, so the benchmark
measures the simulator and not the provisioning API.

A Mosquitto client subscribes to the readings the way the hub does (``$share/hub/...``), so
the broker routes every reading (without one, each PUBACK says "no matching subscribers" and
the meters back off - a different workload).

    uv run python bench/sim.py                      # 10,000 meters, 10,000 readings/s, 30 s
    uv run python bench/sim.py --meters 2000 --seconds 10
    uv run python bench/sim.py --loop asyncio       # on the standard loop instead of uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.backoff import BackoffPolicy
from contract.topics import readings_shared_sub
from device_sim import eventloop
from device_sim.fleet import Fleet
from device_sim.plan import BrokerPlan, MeterPlan, RunPlan
from device_sim.timeparse import floor_time
from ems.broker import HUB_USER, MosquittoServer, dynsec_document, hash_password
from ems.procs import RunAs, free_port
from portal.broker_admin import meter_acls, meter_role


def raise_fd_limit() -> tuple[int, int]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Every meter holds a socket; Mosquitto, started from here, inherits the same limit.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def proc_field(pid: int, path: str, key: str) -> str:
    return proc_field_path(Path(f"/proc/{pid}/{path}"), key)


def machine() -> str:
    model = proc_field_path(Path("/proc/cpuinfo"), "model name")
    return f"{model.lstrip(': ')}, {os.cpu_count()} CPUs"


def proc_field_path(path: Path, key: str) -> str:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return " ".join(line[len(key) :].split())
    except OSError:
        pass
    return "?"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> tuple[float, float]:
    """(user, system) CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


class GcPauses:
    """Collections and the time spent in them while installed (``gc.callbacks``): a fleet
    holds hundreds of thousands of objects, and a full collection stalls every meter."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = self.worst_s = 0.0
        self._t = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
            return
        took = time.perf_counter() - self._t
        self.count[info["generation"]] += 1
        self.total_s += took
        self.worst_s = max(self.worst_s, took)


def subscribe_readings(server: MosquittoServer) -> subprocess.Popen[bytes]:
    """A hub-like subscriber (C, cheap) so that the broker routes every reading."""
    return subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-V",
            "mqttv5",
            "-i",
            HUB_USER,
            "-u",
            HUB_USER,
            "-P",
            server.hub_password,
            "-q",
            "1",
            "-t",
            readings_shared_sub("hub"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def seed_broker(server: MosquittoServer, meters: list[tuple[uuid.UUID, str]]) -> None:
    doc = dynsec_document(server.hub_password, server.portal_password)
    for device_id, password in meters:
        role = meter_role(device_id)
        doc["roles"].append({"rolename": role, "acls": meter_acls(device_id)})
        doc["clients"].append(
            {"username": str(device_id), "roles": [{"rolename": role}], **hash_password(password)}
        )
    server.base_dir.mkdir(parents=True, exist_ok=True)
    server.dynsec_path.write_text(json.dumps(doc))


async def bench(
    args: argparse.Namespace,
    host: str,
    port: int,
    meters: list[tuple[uuid.UUID, str]],
    broker_pid: int,
) -> None:
    now = datetime.now(UTC)
    plan = RunPlan(
        broker=BrokerPlan(host, port),
        meters=[
            MeterPlan(d, p, interval_s=args.interval, seed=i) for i, (d, p) in enumerate(meters)
        ],
        start=floor_time(now, timedelta(seconds=args.interval)),
        speed=args.speed,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        connect_concurrency=args.connect_concurrency,
        backoff=BackoffPolicy(1.0, 5.0),
    )
    loop = asyncio.get_running_loop()
    fleet = Fleet(plan)
    t0 = loop.time()
    fleet.start()
    built = loop.time() - t0
    print(f"built and started {len(meters):,} meters in {built:.1f} s", flush=True)
    next_report = loop.time() + 5
    while (t := fleet.totals()).connected < len(meters):
        if loop.time() - t0 > args.connect_timeout:
            print(f"gave up waiting: {t.connected:,} of {len(meters):,} connected", flush=True)
            break
        if loop.time() >= next_report:
            next_report += 5
            print(f"  {loop.time() - t0:5.1f} s: {t.connected:,} connected", flush=True)
        await asyncio.sleep(0.05)
    connect_s = loop.time() - t0
    rss_connected = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"connected {t.connected:,} meters in {connect_s:.1f} s", flush=True)
    a0, p0, m0, s0 = t.acked, t.produced, t.missed, loop.time()
    cpu0, broker0 = own_cpu_s(), process_cpu_s(broker_pid)
    fleet.take_lag()
    with GcPauses() as pauses:
        await asyncio.sleep(args.seconds)
    lag = fleet.take_lag()
    t = fleet.totals()
    span = loop.time() - s0
    (user1, sys1), broker_cpu = own_cpu_s(), process_cpu_s(broker_pid) - broker0
    user, kernel = user1 - cpu0[0], sys1 - cpu0[1]
    cpu = user + kernel
    stop0 = loop.time()
    await fleet.stop(grace=30)
    stop_s = loop.time() - stop0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    demand = len(meters) * args.speed / args.interval
    print()
    print(f"== bench/sim.py: {len(meters):,} meters, one process, {eventloop.loop_name(loop)} ==")
    print(f"load average (1 min) at the end  {os.getloadavg()[0]:8.2f}")
    print(f"time to connect all meters       {connect_s:8.1f} s  ({t.connected:,} connected)")
    pace = f"interval {args.interval} s at x{args.speed:g}"
    print(f"readings asked for               {demand:8.0f} /s  ({pace})")
    print(f"readings produced                {(t.produced - p0) / span:8.0f} /s over {span:.0f} s")
    print(f"readings acknowledged (PUBACK)   {(t.acked - a0) / span:8.0f} /s")
    print(f"reading slots missed (overload)  {t.missed - m0:8d}")
    print(
        f"simulator CPU while publishing   {cpu:8.1f} s  ({cpu / span:.0%} of one CPU; "
        f"user {user:.1f} s, system {kernel:.1f} s)"
    )
    # Per reading, the figure that does not depend on what else the machine is doing.
    per = cpu / max(t.produced - p0, 1) * 1e6
    print(f"simulator CPU per reading        {per:8.0f} us  (1 CPU: {1e6 / per:,.0f} readings/s)")
    print(
        f"Mosquitto CPU while publishing   {broker_cpu:8.1f} s  "
        f"({broker_cpu / span:.0%} of one CPU)"
    )
    print(f"worst poll lag while publishing  {lag * 1000:8.0f} ms")
    gens = "/".join(map(str, pauses.count))
    print(
        f"GC while publishing              {pauses.total_s * 1000:8.0f} ms  "
        f"(collections gen0/1/2 {gens}; worst {pauses.worst_s * 1000:.0f} ms)"
    )
    print(f"still buffered at the end        {t.buffered:8d}")
    print(f"reconnects during the run        {t.reconnects:8d}")
    print(f"clean stop (offline + DISCONNECT){stop_s:8.1f} s")
    print(f"peak RSS after connecting        {rss_connected:8.0f} MiB")
    print(f"peak RSS (simulator process)     {peak:8.0f} MiB  (target < 1024)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="publishing phase")
    parser.add_argument("--interval", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--state-dir", help="file-backed buffers here (default: memory)")
    parser.add_argument("--connect-concurrency", type=int, default=256)
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--loop", choices=eventloop.CHOICES, default="auto", help="as ems-sim's")
    args = parser.parse_args()
    soft, hard = raise_fd_limit()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"file descriptors: this process may open {soft:,} (hard limit {hard:,})")
    if soft < args.meters + 256:
        print(
            f"not enough descriptors for {args.meters:,} meters: raise ulimit -Hn", file=sys.stderr
        )
        raise SystemExit(2)
    meters = [(uuid.uuid4(), secrets.token_urlsafe(16)) for _ in range(args.meters)]
    run_as = RunAs.detect()
    base = Path(tempfile.mkdtemp(prefix="ems-bench-sim-"))
    base.chmod(0o755)
    server = MosquittoServer(
        base / "mq", free_port(), secrets.token_urlsafe(16), secrets.token_urlsafe(16), run_as
    )
    try:
        t = time.monotonic()
        seed_broker(server, meters)
        server.start()
        assert server.proc is not None
        print(
            f"broker: Mosquitto on port {server.port} with {args.meters:,} meter accounts, "
            f"ready in {time.monotonic() - t:.1f} s; its descriptor limit: "
            f"{proc_field(server.proc.pid, 'limits', 'Max open files')}",
            flush=True,
        )
        subscriber = subscribe_readings(server)
        try:
            eventloop.run(bench(args, server.host, server.port, meters, server.proc.pid), args.loop)
        finally:
            subscriber.terminate()
            subscriber.wait()
        print(f"broker peak RSS                  {proc_field(server.proc.pid, 'status', 'VmHWM:')}")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
