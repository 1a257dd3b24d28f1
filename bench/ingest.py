"""Hub ingest benchmark: real Mosquitto, real PostgreSQL (fsync on), the hub as users run it.

Prints:
  1. sustained readings/s committed by one hub draining a queued stream;
  2. the rate at which a plain `mosquitto_sub` (QoS 1, persistent session) drains the same
     stream from the same broker, and the ratio of the two;
  3. at a fixed rate, once the drained stream is rolled up: p50/p99 publish-to-commit latency
     (the moment of commit is a NOTIFY that a trigger, added by this benchmark only, sends
     from the hub's inserting transaction: PostgreSQL delivers it when that transaction
     commits) and p50/p99 publish-to-live-event latency (the hub's live event with the
     hour's total, which leaves as the reading commits: hub/running.py);
  4. the hub's peak RSS with 10,000 registered devices;
  5. what the answer needs to be read on another machine: the CPU model, nproc and a
     pure-Python calibration loop; the CPU seconds the hub, PostgreSQL and Mosquitto spent over
     each drain (and per reading); the hub's batch-size distribution; the hub's wall and CPU
     time per stage (decode, take, prepare, copy, insert, commit, live, ack, rollup) per
     reading over its drain (hub_stage_seconds_total).

    uv run python bench/ingest.py [--devices 10000] [--readings 200000] [--rate 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.kit import peak_rss_mb, percentile, reap_at_exit, services
from bench.machine import CpuMeter, machine_line
from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.hubkit import (
    Gateway,
    add_devices,
    count,
    create_gateway,
    hub_process,
    wait_rolled_up,
)
from ems.broker import HUB_USER, hub_user
from ems.procs import free_port

# Registers in the latency phase start here, far above the drained stream's (at most ~20,000)
# and below the largest register the hub accepts (contract.readings.MAX_REGISTER_KWH, 1e9: at
# 1e9 itself every reading of the phase but the first was dead-lettered as out of range).
MARK = 1e8


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


# Statement-level, on the readings the latency phase sends: one NOTIFY per hub batch, which
# PostgreSQL delivers to listeners when the inserting transaction commits, and not before.
COMMIT_PROBE = f"""
CREATE FUNCTION bench_committed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE marks text;
BEGIN
    -- In chunks of 1,000 marks: a NOTIFY payload must stay under 8,000 bytes, and a larger one
    -- would fail the hub's whole transaction (a lagging hub commits batches of thousands).
    FOR marks IN
        SELECT string_agg(m::text, ',') FROM (
            SELECT (energy_kwh - {MARK})::bigint AS m, (row_number() OVER ()) / 1000 AS chunk
            FROM new_rows WHERE energy_kwh >= {MARK}
        ) AS marked GROUP BY chunk
    LOOP
        PERFORM pg_notify('bench_committed', marks);
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_committed AFTER INSERT ON readings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_committed();
"""


class CommitClock:
    """LISTENs for the probe's notifications; remembers when each reading's commit arrived."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("LISTEN bench_committed")
        self.committed: dict[int, float] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not select.select([self.conn.fileno()], [], [], 0.2)[0]:
                continue
            for note in self.conn.notifies(timeout=0, stop_after=1000):
                now = time.time()
                for mark in note.payload.split(","):
                    self.committed.setdefault(int(mark), now)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.conn.close()


# The drain reads the readings as a hub would: a hub replica's account of its own (the hub
# under test runs as ems-hub-1), under the client id pinned to that account.
DRAIN_USER = hub_user(2)


def drain_command(broker: Any) -> list[str]:
    """mosquitto_sub on the readings, QoS 1, with a persistent session (-c) that queues the
    stream while it is away."""
    return [
        "mosquitto_sub",
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-u",
        DRAIN_USER,
        "-P",
        broker.hub_password,
        "-q",
        "1",
        "-c",
        "-i",
        DRAIN_USER,
        "-t",
        "ems/v1/meters/+/readings",
    ]


def end_drain_session(broker: Any) -> None:
    """Discard the drain's persistent session: connecting under its client id with a clean
    session (no -c) makes the broker drop the old session, subscription and queue included,
    and the clean session itself ends at disconnect. Otherwise the broker keeps queueing every
    reading of the hub's run for a subscriber that never returns."""
    clean = [arg for arg in drain_command(broker) if arg != "-c"]
    subprocess.run([*clean, "-E"], check=True, stdout=subprocess.DEVNULL)


def metrics_text(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()


def metric(port: int, name: str) -> float:
    for line in metrics_text(port).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def batch_distribution(port: int) -> str:
    """The hub's batch sizes as the share of batches in each histogram bucket."""
    cumulative: list[tuple[str, float]] = []
    for line in metrics_text(port).splitlines():
        if line.startswith("hub_batch_messages_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            cumulative.append((le, float(line.split()[-1])))
    total = cumulative[-1][1] if cumulative else 0.0
    if not total:
        return "no batches"
    parts, below = [], 0.0
    for le, n in cumulative:
        if n > below:
            parts.append(f"≤{le.removesuffix('.0')}: {100 * (n - below) / total:.0f}%")
        below = n
    return f"{total:.0f} batches; " + ", ".join(parts)


def stage_seconds(port: int) -> dict[tuple[str, str], float]:
    """The hub's seconds per stage: {("wall" or "cpu", stage): seconds} (hub.metrics.Stages)."""
    out: dict[tuple[str, str], float] = {}
    for line in metrics_text(port).splitlines():
        for kind, name in (
            ("wall", "hub_stage_seconds_total"),
            ("cpu", "hub_stage_cpu_seconds_total"),
        ):
            if line.startswith(name + '{stage="'):
                stage = line.split('stage="', 1)[1].split('"', 1)[0]
                out[(kind, stage)] = float(line.split()[-1])
    return out


def stage_lines(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], readings: int
) -> list[str]:
    """Per stage over the drain: wall and CPU µs per reading (summed over the hub's threads;
    wall less CPU is waiting: for PostgreSQL, the broker, a lock or the GIL)."""

    def per(kind: str, stage: str) -> float:
        return 1e6 * (after.get((kind, stage), 0.0) - before.get((kind, stage), 0.0)) / readings

    stages = [stage for kind, stage in after if kind == "wall"]
    cells = [f"{s} {per('wall', s):.1f}/{per('cpu', s):.1f}" for s in stages]
    half = -(-len(cells) // 2)
    return [
        "stages, wall/CPU µs per reading: " + ", ".join(cells[:half]),
        "                                 " + ", ".join(cells[half:]),
    ]


def cpu_line(spent: dict[str, float], readings: int) -> str:
    wall = spent.pop("wall")
    each = ", ".join(
        f"{name} {s:.1f} s ({100 * s / wall:.0f}% of a core, {1e6 * s / readings:.1f} µs/reading)"
        for name, s in spent.items()
    )
    return f"CPU over {wall:.1f} s: {each}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=2_000)
    ap.add_argument("--rate-seconds", type=int, default=10)
    args = ap.parse_args()

    print(machine_line())
    with services() as svc:
        broker = svc.broker
        assert svc.pg.proc is not None and broker.server.proc is not None
        pg_pid, mq_pid = svc.pg.proc.pid, broker.server.proc.pid
        print(f"== {args.devices} devices, {args.readings} readings; PostgreSQL fsync on")
        devices = add_devices(svc.dsn, args.devices)
        gw_user, gw_pw = create_gateway(broker)
        # The stream ends ten minutes ago, so the latency phase continues each meter's series
        # (a meter silent for days would make its next reading spread over every hour between),
        # within 1.5 reading intervals: its readings are totalled as they commit
        # (hub/running.py), not left to the rollup.
        per_meter = -(-args.readings // args.devices)
        start = datetime.now(UTC) - timedelta(minutes=10 * per_meter)
        messages = stream(devices, args.readings, start)

        # --- 1. mosquitto_sub draining the stream -----------------------------------------
        drain = drain_command(broker)
        subprocess.run([*drain, "-E"], check=True)  # create the persistent session, then leave
        gw = Gateway(broker, gw_user, gw_pw)
        gw.publish_many(messages)
        gw.flush(300)
        t = time.perf_counter()
        sub_proc = subprocess.Popen([*drain, "-C", str(len(messages))], stdout=subprocess.DEVNULL)
        cpu = CpuMeter({"mosquitto": mq_pid})
        cpu.start()
        # wait4: the drain's own CPU time (it has exited before a /proc reading could see it).
        _pid, status, usage = os.wait4(sub_proc.pid, 0)
        sub_proc.returncode = os.waitstatus_to_exitcode(status)
        if sub_proc.returncode != 0:
            sys.exit("mosquitto_sub failed")
        drain_rate = len(messages) / (time.perf_counter() - t)
        drain_cpu = {"mosquitto_sub": usage.ru_utime + usage.ru_stime, **cpu.stop()}
        end_drain_session(broker)  # so that the hub's run gets the broker to itself
        print(f"mosquitto_sub drain: {drain_rate:,.0f} msg/s")
        print(f"  {cpu_line(drain_cpu, len(messages))}")

        # --- 2. the hub draining the same stream -----------------------------------------------
        log = svc.base / "hub.log"
        hub = reap_at_exit(hub_process(svc.dsn, broker, HUB_USER, log, HUB_MQTT_USERNAME=HUB_USER))
        deadline = time.monotonic() + 30
        while "connected to" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        hub.terminate()  # its persistent session (and share-group membership) stays
        hub.wait(30)
        gw.publish_many(messages)
        gw.flush(300)
        http_port = free_port()
        hub = reap_at_exit(
            hub_process(
                svc.dsn,
                broker,
                HUB_USER,
                log,
                HUB_HTTP_PORT=str(http_port),
                HUB_MQTT_USERNAME=HUB_USER,
                # The latency phase's registers jump to MARK (how its readings are told apart):
                # under the default ceiling every one would be quarantined as implausible, and
                # no hour total would ever be published for it.
                HUB_MAX_POWER_W="1e15",
            )
        )
        # Progress from the hub's own counter of committed readings (a count(*) of the table
        # every 50 ms would itself load PostgreSQL); the table is counted once at the end.
        t = time.perf_counter()
        cpu = CpuMeter({"hub": hub.pid, "postgres": pg_pid, "mosquitto": mq_pid})
        first: tuple[float, float] | None = None  # (time, stored) when commits were first seen
        stored = 0.0
        stages_before: dict[tuple[str, str], float] = {}
        while stored < len(messages):
            time.sleep(0.05)
            if time.perf_counter() - t > 600:
                sys.exit("hub did not store the stream within 10 minutes")
            try:
                stored = metric(http_port, "hub_readings_stored_total")
            except OSError:
                continue  # not listening yet
            if first is None and stored > 0:
                first = (time.perf_counter(), stored)
                cpu.start()
                stages_before = stage_seconds(http_port)
        done = time.perf_counter()
        hub_cpu = cpu.stop()
        stages_after = stage_seconds(http_port)
        assert first is not None
        assert count(svc.dsn, "SELECT count(*) FROM readings") == len(messages)
        hub_rate = (len(messages) - first[1]) / (done - first[0])
        print(
            f"hub sustained:       {hub_rate:,.0f} readings/s committed, first commit to last "
            f"(ratio to mosquitto_sub: {hub_rate / drain_rate:.2f}); "
            f"{len(messages) / (done - t):,.0f}/s counting the hub's start"
        )
        assert first is not None
        print(f"  {cpu_line(hub_cpu, int(len(messages) - first[1]))}")
        print(f"  batches: {batch_distribution(http_port)}")
        for line in stage_lines(stages_before, stages_after, int(len(messages) - first[1])):
            print(f"  {line}")

        # --- 3. latency at a fixed rate ----------------------------------------------------------
        # In steady state: the drained stream's hours are rolled up first, so what is timed is
        # the hub at this rate, not the tail of the backlog.
        wait_rolled_up(svc.dsn, timeout=600)
        with psycopg.connect(svc.dsn, autocommit=True) as conn:
            conn.execute(COMMIT_PROBE)
        commits = CommitClock(svc.dsn)
        live: dict[int, float] = {}
        lock = threading.Lock()
        sub = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=broker.admin_user, protocol=mqtt.MQTTv5
        )
        sub.username_pw_set(broker.admin_user, broker.portal_password)
        subscribed = threading.Event()

        def on_message(_c, _u, msg) -> None:
            now = time.time()
            event = json.loads(msg.payload)
            if event["energy_kwh"] < MARK or event["hour_kwh"] is None:
                return  # from the drained stream, or no hour total yet (waits for the rollup)
            with lock:
                live.setdefault(int(event["energy_kwh"] - MARK), now)

        sub.on_message = on_message
        sub.on_subscribe = lambda *_: subscribed.set()
        sub.on_connect = lambda c, *_: c.subscribe("ems/v1/events/live/+", 0)
        sub.connect(broker.host, broker.port)
        sub.loop_start()
        if not subscribed.wait(10):
            print("  (live events: the subscription was not confirmed)")
        interval = 1.0 / args.rate
        total = args.rate * args.rate_seconds
        sent: dict[int, float] = {}
        t0 = time.perf_counter()
        for i in range(total):
            target = t0 + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            d = devices[i % len(devices)]
            sent[i] = time.time()
            gw.publish(readings_topic(d), encode_reading(Reading(d, datetime.now(UTC), MARK + i)))
        achieved = total / (time.perf_counter() - t0)
        gw.flush(60)
        deadline = time.monotonic() + 30
        while len(commits.committed) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        # Wait until every device of this phase has had a live event, or they stop coming (a
        # total the running state cannot give waits for the rollup, up to HUB_ROLLUP_INTERVAL_S).
        wanted, quiet = min(total, len(devices)), time.monotonic()
        while time.monotonic() - quiet < 15:
            with lock:
                have = len({i % len(devices) for i in live})
            if have >= wanted:
                break
            time.sleep(0.2)
            with lock:
                if len({i % len(devices) for i in live}) > have:
                    quiet = time.monotonic()
        commit_ms = [(commits.committed[i] - sent[i]) * 1000 for i in commits.committed]
        with lock:  # a device's live events are coalesced to one a second: time those sent
            live_ms = [(live[i] - sent[i]) * 1000 for i in live if i in sent]
        commits.close()
        print(
            f"latency at {achieved:,.0f} readings/s: publish → commit "
            f"p50 {percentile(commit_ms, 50):.1f} ms, p99 {percentile(commit_ms, 99):.1f} ms "
            f"({len(commit_ms)} of {total} readings)"
        )
        print(
            f"                          publish → live event (hour total) "
            f"p50 {percentile(live_ms, 50):.1f} ms, p99 {percentile(live_ms, 99):.1f} ms "
            f"({len(live_ms)} events)"
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
