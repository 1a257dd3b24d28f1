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

import psycopg

from hub.alert_store import AlertEngine
from hub.live import LivePublisher
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.rollup_store import rollup_pending
from hub.storage import PgStorage

log = logging.getLogger("hub.rollup")
PASS_LIMIT = 5000


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
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.metrics = metrics
        self.interval_s = interval_s
        self.live = live
        self.alerts = alerts
        self._wake = threading.Event()
        self._failing = False

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while True:
            self._wake.wait(0.25)
            self._wake.clear()
            started = time.monotonic()
            self.run_pass()
            if self.live is not None:
                self.live.flush()
            if stop.is_set():
                self.run_pass()  # the writer has drained: one last pass, then stop
                return
            # Passes take at most a fifth of the time: a small pass (light load) is followed
            # at once by the next, a large one (a burst) by a pause in which ingest runs free
            # and more readings per device accumulate for the next pass.
            took = time.monotonic() - started
            stop.wait(min(4 * took, self.interval_s))

    def run_pass(self) -> None:
        while True:
            try:
                outcome = rollup_pending(
                    self.storage.conn,
                    self.registry.get,
                    limit=PASS_LIMIT,
                    after_rollup=self.alerts.after_rollup if self.alerts else None,
                )
            except psycopg.Error as exc:
                if not self._failing:
                    log.error("rollup failed (%s); marks are kept, retrying", exc)
                self._failing = True
                self.storage.reset()
                return
            if self._failing:
                log.info("rollup recovered")
            self._failing = False
            for letter in outcome.dead:
                self.metrics.rejected.labels(letter.reason).inc()
            self.metrics.rollups.inc(len(outcome.rewrites))
            if self.alerts is not None:
                self.alerts.publish_pending()
            if self.live is not None and outcome.rewrites:
                self.live(outcome)
            if not outcome.more:
                return
