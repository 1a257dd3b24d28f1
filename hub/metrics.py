"""The hub's counters, on a registry of its own (several hubs can live in one test process)."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    """A histogram fed a batch of values at once: a bisect per value and one lock per batch.
    (``Histogram.observe`` takes a lock and walks the buckets for each value: 0.75 µs, which at
    50,000 readings/s is 4% of the hub's one interpreter.)"""

    def __init__(
        self, name: str, documentation: str, buckets: Iterable[float], registry: CollectorRegistry
    ) -> None:
        self._name, self._doc = name, documentation
        self._bounds = sorted(buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        bounds, total, tally = self._bounds, 0.0, Tally[int]()
        for v in values:
            tally[bisect_left(bounds, v)] += 1  # the first bound >= v: Prometheus's "le"
            total += v
        with self._lock:
            for i, n in tally.items():
                self._counts[i] += n
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip([*map(floatToGoString, self._bounds), "+Inf"], counts, strict=True):
            running += n
            cumulative.append((bound, running))
        yield HistogramMetricFamily(self._name, self._doc, buckets=cumulative, sum_value=total)


# Where the hub's time goes, per batch (per chunk read, for decode), in pipeline order:
#   decode   the MQTT reader classifying and decoding what one recv brought (hub.batch.classify)
#   take     a writer waiting for and taking its batch (idle time when ingest keeps up)
#   prepare  routing, validation, de-duplication (hub.batch.prepare)
#   copy     the readings' COPY into the session's temp table (rows packed by psycopg)
#   insert   the transaction's statements: readings, rollup log, last_seen, dead letters
#   commit   COMMIT: PostgreSQL flushing the WAL (synchronous_commit on)
#   live     after the commit: running totals, live events, the current hour's alerts
#   ack      acknowledging the batch to the broker, in arrival order (hub.buffer.Intake)
#   rollup   the rollup thread's passes (beside ingest, competing for the GIL and PostgreSQL)
STAGES = ("decode", "take", "prepare", "copy", "insert", "commit", "live", "ack", "rollup")

Mark = tuple[float, float]  # (time.perf_counter(), time.thread_time())


class Stages:
    """Wall and thread-CPU seconds spent in each stage (``STAGES``), summed over threads.

    Measured once per batch, not per reading: two clock reads at each boundary (``lap``).
    The wall time of a stage less its CPU time is waiting: for PostgreSQL, the broker, a
    lock, or the GIL."""

    def __init__(self, registry: CollectorRegistry) -> None:
        wall = Counter(
            "hub_stage_seconds", "Wall seconds spent per ingest stage", ["stage"], registry=registry
        )
        cpu = Counter(
            "hub_stage_cpu_seconds",
            "Thread CPU seconds spent per ingest stage",
            ["stage"],
            registry=registry,
        )
        # Bound once: labels() per batch would look each child up under a lock.
        self._wall = {s: wall.labels(s) for s in STAGES}
        self._cpu = {s: cpu.labels(s) for s in STAGES}

    @staticmethod
    def mark() -> Mark:
        return time.perf_counter(), time.thread_time()

    def lap(self, stage: str, since: Mark) -> Mark:
        """Book the time from ``since`` to now to ``stage``; returns now (the next lap's start).
        On the thread that took ``since``: the CPU clock is the thread's."""
        now = time.perf_counter(), time.thread_time()
        self._wall[stage].inc(now[0] - since[0])
        self._cpu[stage].inc(max(0.0, now[1] - since[1]))
        return now


# For storage used without a hub's metrics (the rollup's connection, tests, tools): counted on
# a registry nobody exports.
UNEXPORTED = Stages(CollectorRegistry())


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "hub_readings_received", "Readings decoded from MQTT messages", registry=r
        )
        self.messages = Counter("hub_messages_received", "MQTT messages received", registry=r)
        self.stored = Counter("hub_readings_stored", "Readings committed (new)", registry=r)
        self.duplicates = Counter(
            "hub_readings_duplicate",
            "Redelivered readings absorbed (same key, same value)",
            registry=r,
        )
        self.conflicts = Counter(
            "hub_readings_conflict",
            "Readings with a stored key but a different value",
            registry=r,
        )
        self.rejected = Counter(
            "hub_messages_rejected",
            "Messages or readings dead-lettered, by reason",
            ["reason"],
            registry=r,
        )
        self.backlog = Gauge("hub_backlog", "Messages received and not yet committed", registry=r)
        self.flush_seconds = Histogram(
            "hub_flush_seconds",
            "Time to commit one batch",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.batch_size = Histogram(
            "hub_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 5000, 10000),
            registry=r,
        )
        self.lag_seconds = BatchHistogram(
            "hub_receive_to_commit_seconds",
            "Time from the hub receiving a message to its batch being committed",
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            r,
        )
        self.flush_failures = Counter(
            "hub_flush_failures", "Batches whose commit failed and was retried", registry=r
        )
        self.rollups = Counter(
            "hub_device_rollups", "Device hour recomputations (coalesced)", registry=r
        )
        self.alerts = Counter("hub_alerts_raised", "Alerts raised, by kind", ["kind"], registry=r)
        self.mqtt_connected = Gauge(
            "hub_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.db_ok = Gauge(
            "hub_database_ok", "1 while the last database operation succeeded", registry=r
        )
        self.stages = Stages(r)
