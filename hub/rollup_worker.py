"""The rollup thread: recomputes marked devices' hours beside the ingest writer.

It has its own database connection, so ingest keeps committing and acknowledging (and the
broker keeps sending) while hours are recomputed. After ingest commits it wakes this thread;
passes are spaced so that they take at most a fifth of the time (a busy device then costs one
recompute per pass, not one per reading), up to ``interval_s`` apart; under light load a pass
is a few milliseconds, so alerts follow readings within a fraction of a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from contract.readings import MAX_POWER_W
from contract.reasons import reason_family
from hub.alert_store import AlertEngine
from hub.live import LivePublisher
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.rollup_store import rollup_pending
from hub.storage import PgStorage

log = logging.getLogger("hub.rollup")
# Devices per pass: a pass is one transaction and a burst of Python work beside the writers;
# at 2,000 readings/s over 10,000 meters, 5,000 put publish→commit p99 at 120–160 ms, 1,000 at
# 65–87 ms, 500 at 57 ms (bench/ingest.py --readings 20000). More devices wait for the next pass.
PASS_LIMIT = 500


class RollupWorker:
    def __init__(
        self,
        storage: PgStorage,
        registry: DeviceRegistry,
        metrics: HubMetrics,
        *,
        interval_s: float,
        live: LivePublisher | None = None,
        alerts: AlertEngine | None = None,
        ingest_idle: Callable[[], bool] = lambda: True,
        ingest_behind: Callable[[], bool] = lambda: False,
        max_power_w: float = MAX_POWER_W,
    ) -> None:
        """``ingest_idle()``: no message is waiting for a writer (a pause would gain nothing).
        ``ingest_behind()``: more is waiting than a writer takes at once (a backlog)."""
        self.storage = storage
        self.registry = registry
        self.metrics = metrics
        self.interval_s = interval_s
        self.live = live
        self.alerts = alerts
        self.ingest_idle = ingest_idle
        self.ingest_behind = ingest_behind
        self.max_power_w = max_power_w
        self._wake = threading.Event()
        self._failing = False

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while True:
            # A live event held back by the per-device interval leaves when it falls due.
            self._wake.wait(min(0.25, self.live.next_due()) if self.live is not None else 0.25)
            self._wake.clear()
            started = time.monotonic()
            mark = self.metrics.stages.mark()
            more = self.run_pass()
            if self.live is not None:
                self.live.flush()
            self.metrics.stages.lap("rollup", mark)
            if stop.is_set():
                self.run_pass(drain=True)  # the writers have drained: the rest, then stop
                return
            # Passes take at most a fifth of the time: a small pass (light load) is followed
            # at once by the next, a large one (a burst, or more than PASS_LIMIT devices) by a
            # pause in which ingest runs free and more readings per device accumulate for the
            # next pass. (Looping until the log is empty would never end while ingest outpaces
            # the rollup, and would take the CPU the writers need.)
            if more and self.ingest_idle():
                self._wake.set()  # nothing to make room for: the next pass at once
                continue
            took = time.monotonic() - started
            stop.wait(min(4 * took, self.interval_s))

    def _give_way(self) -> None:
        """While ingest is behind, let the MQTT reader and the writers have the GIL between two
        devices: a thread waking from I/O otherwise waits up to the 5 ms switch interval for
        it, at each step of a commit, while a pass computes. Only then: it makes a pass four
        times longer, and live events follow the passes. (bench/ingest.py: draining 200,000
        readings, 77-80k/s giving way against 69-74k/s not; at 2,000/s, live events p50 4.1-4.8 s
        always giving way against 2.2-2.4 s never.)"""
        if self.ingest_behind():
            time.sleep(0)

    def run_pass(self, *, drain: bool = False) -> bool:
        """One pass of up to PASS_LIMIT devices; with ``drain``, passes until none is left.
        True if work was left in the log."""
        while True:
            try:
                outcome = rollup_pending(
                    self.storage.conn,
                    self.registry.get,
                    limit=PASS_LIMIT,
                    after_rollup=self.alerts.after_rollup if self.alerts else None,
                    between_devices=self._give_way,
                    max_power_w=self.max_power_w,
                )
            except psycopg.Error as exc:
                if not self._failing:
                    log.error("rollup failed (%s); marks are kept, retrying", exc)
                self._failing = True
                self.storage.reset()
                return False
            if self._failing:
                log.info("rollup recovered")
            self._failing = False
            for letter in outcome.dead:
                self.metrics.rejected.labels(reason_family(letter.reason)).inc()
            self.metrics.rollups.inc(len(outcome.rewrites))
            if self.alerts is not None:
                self.alerts.publish_pending()
            if self.live is not None and outcome.rewrites:
                self.live(outcome)
            if not (drain and outcome.more):
                return outcome.more
