"""Composition root of the hub: builds the pieces, runs them, stops them in order."""

from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from contract.topics import DEVICE_EVENTS_TOPIC, STATUS_SUB, readings_shared_sub
from hub.alert_store import AlertEngine
from hub.batch import Message, PreparedBatch, classify
from hub.buffer import Intake
from hub.health import PROBE_TIMEOUT_S, HealthMonitor
from hub.http import HealthServer
from hub.live import LivePublisher
from hub.metrics import HubMetrics
from hub.mqtt.adapter import BrokerAdapter
from hub.mqtt.connection import ConnectionSettings, MqttConnection, tls_context
from hub.registry import DeviceRegistry
from hub.rollup_worker import RollupWorker
from hub.running import RunningTotals
from hub.settings import HubSettings
from hub.storage import PgStorage, TouchThrottle
from hub.writer import BatchWriter, WriterAlerts

log = logging.getLogger("hub")
TOUCH_MAX_S = 10.0


def connection_settings(settings: HubSettings) -> ConnectionSettings:
    """What the broker connection needs, and nothing else of the hub's settings."""
    return ConnectionSettings(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        client_id=settings.client_id,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        receive_maximum=settings.receive_maximum,
        session_expiry_s=settings.session_expiry_s,
        tls=tls_context(settings.mqtt_ca_file) if settings.mqtt_tls else None,
    )


class Hub:
    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.metrics = HubMetrics()
        self.registry = DeviceRegistry()
        touch = TouchThrottle(self._touch_period)
        self.mqtt: BrokerAdapter = MqttConnection(
            connection_settings(settings),
            self._deliver,
            [
                (readings_shared_sub(settings.share_group), 1),
                (STATUS_SUB, 1),
                (DEVICE_EVENTS_TOPIC, 1),
            ],
        )
        # Never more than the broker's in-flight window plus status/event traffic.
        self.intake = Intake(settings.receive_maximum + 10_000, self.mqtt.ack_many)
        self.running = RunningTotals(self.registry.get, max_power_w=settings.max_power_w)
        self.live = LivePublisher(
            self.mqtt.publish_many, self.registry, settings.live_min_interval_s, self.running
        )
        self.alerts = AlertEngine(self.registry, self.mqtt.publish, self.metrics)
        self.rollup = RollupWorker(
            PgStorage(settings.database_url),
            self.registry,
            self.metrics,
            interval_s=settings.rollup_interval_s,
            live=self.live,
            alerts=self.alerts,
            ingest_idle=self.intake.idle,
            ingest_behind=lambda: len(self.intake.inbox) >= settings.batch_size,
            max_power_w=settings.max_power_w,
        )
        self.writers = [
            BatchWriter(
                settings,
                storage,
                self.registry,
                self.metrics,
                self.intake,
                alerts=self.alerts.on(storage),
                on_commit=self.rollup.wake,
                on_committed=self._committed,
                housekeeping=i == 0,
            )
            for i in range(settings.writers)
            # Each writer's own connection; its status alerts run on that connection too.
            for storage in [
                PgStorage(settings.database_url, touch=touch, stages=self.metrics.stages)
            ]
        ]
        self.monitor = HealthMonitor(settings.database_url, self.mqtt)
        self._monitor_stop = threading.Event()
        self._monitor_thread = threading.Thread(
            target=self.monitor.run, args=(self._monitor_stop,), name="hub-health", daemon=True
        )
        self.http = HealthServer(
            settings.http_host, settings.http_port, self.metrics.registry, self.health
        )
        self._writer_stop = threading.Event()
        self._writer_threads = [
            threading.Thread(
                target=w.run, args=(self._writer_stop,), name=f"hub-writer-{i}", daemon=True
            )
            for i, w in enumerate(self.writers)
        ]
        self._rollup_stop = threading.Event()
        self._rollup_thread = threading.Thread(
            target=self.rollup.run, args=(self._rollup_stop,), name="hub-rollup", daemon=True
        )

    def _touch_period(self, device_id: UUID) -> float:
        """How long a device's last_seen may go unwritten while it keeps sending: a quarter of
        the silence that makes it stale (so staleness never fires on a live meter), at most
        ``TOUCH_MAX_S`` (the status page's "last seen" is that fresh)."""
        info = self.registry.get(device_id)
        if info is None:
            return 0.0
        return min(TOUCH_MAX_S, info.interval_s * self.settings.stale_intervals / 4)

    def _committed(self, prepared: PreparedBatch, alerts: WriterAlerts | None) -> None:
        """On a writer thread, after its batch committed: live events and the current hour's
        alerts from the running totals, without waiting for the rollup."""
        totals = self.live.committed(prepared.readings)
        if alerts is not None:
            alerts.at_commit(totals)

    def _deliver(self, messages: list[Message]) -> None:
        """On the MQTT reader thread: classify each message and decode readings now (the
        writers use the result), then into the inbox the writers share."""
        s = self.settings
        mark = self.metrics.stages.mark()
        classify(
            messages, now=datetime.now(UTC), max_future=s.max_future, max_power_w=s.max_power_w
        )
        self.metrics.stages.lap("decode", mark)
        self.intake.inbox.put_many(messages)
        self.metrics.backlog.inc(len(messages))

    def workers_alive(self) -> bool:
        """False once the writer or the rollup thread has died of an unexpected error (the
        traceback is on stderr): the hub then takes nothing more and must be restarted."""
        return all(t.is_alive() for t in self._writer_threads) and self._rollup_thread.is_alive()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Cheap: the writers' state and the monitor's last answers (hub.health), no I/O."""
        connected = self.mqtt.connected.is_set()
        broker_ok = connected and self.monitor.broker_ok()
        alive = self.workers_alive()
        db_ok = all(w.db_ok for w in self.writers) and self.monitor.database_ok()
        ok = broker_ok and db_ok and alive
        return ok, {
            "status": "ok" if ok else ("degraded" if alive else "failed"),
            "workers": "ok" if alive else "dead",
            "mqtt": "connected" if connected else "disconnected",
            "broker": "ok" if broker_ok else "unavailable",
            "database": "ok" if db_ok else "unavailable",
            "backlog": len(self.intake.inbox),
            "devices": len(self.registry),
            "client_id": self.settings.client_id,
        }

    def start(self) -> None:
        self.http.start()
        for t in self._writer_threads:
            t.start()
        self._rollup_thread.start()
        self.mqtt.start()
        self._monitor_thread.start()
        self.metrics.mqtt_connected.set_function(lambda: float(self.mqtt.connected.is_set()))
        log.info(
            "hub %s started (health on %s:%d)",
            self.settings.client_id,
            self.settings.http_host,
            self.http.port,
        )

    def stop(self) -> None:
        """Stop intake, drain and commit what was received, acknowledge it, then disconnect."""
        self.mqtt.intake_open = False
        self._writer_stop.set()
        deadline = time.monotonic() + 60
        for t in self._writer_threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._rollup_stop.set()
        self.rollup.wake()
        self._rollup_thread.join(timeout=60)
        self._monitor_stop.set()
        self._monitor_thread.join(timeout=2 * PROBE_TIMEOUT_S)
        self.mqtt.stop()
        for w in self.writers:
            w.storage.close()
        self.rollup.storage.close()
        self.http.stop()
        log.info("hub %s stopped", self.settings.client_id)


# Python's cyclic garbage collector, tuned for the hub process (see ``run``). The hub makes
# almost no cyclic garbage, but every reading allocates container objects, and with the
# default thresholds (700, 10, 10) a full collection, scanning every object the process holds,
# ran about once a second under load and stopped all threads for up to 55 ms, finding nothing.
# bench/ingest.py, one run each: publish-to-commit p99 at 2,000/s 69-94 ms with the defaults,
# 54 ms with these thresholds, 46 ms with the freeze, 46-54 ms with both; full collections
# of more than 10 ms during the 200,000-reading drain: 21 with the defaults, 1-2 with both.
GC_THRESHOLDS = (10_000, 50, 100)


def run(settings: HubSettings, stop: threading.Event) -> int:
    """The hub process: run until ``stop``, then drain and stop in order."""
    hub = Hub(settings)
    gc.set_threshold(*GC_THRESHOLDS)
    hub.start()
    frozen = False
    while not stop.wait(0.5):
        if not frozen and all(w.db_ok for w in hub.writers):
            # The registry is loaded: what exists now (modules, device cache) lives as long
            # as the process; a full collection need not scan it again.
            gc.freeze()
            frozen = True
        if hub.mqtt.fatal:
            log.error("%s — stopping", hub.mqtt.fatal)
            hub.stop()
            return 3
        if not hub.workers_alive():
            # Exit so the supervisor (ems up, compose, systemd) restarts the hub: whatever it
            # had not committed is unacknowledged, and the broker redelivers it.
            log.error("a hub worker thread died (traceback above) — stopping")
            hub.stop()
            return 4
    hub.stop()
    return 0
