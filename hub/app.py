"""Composition root of the hub: builds the pieces, runs them, stops them in order."""

from __future__ import annotations

import logging
import threading
from typing import Any

from hub.alert_store import AlertEngine
from hub.http import HealthServer
from hub.live import LivePublisher
from hub.metrics import HubMetrics
from hub.mqtt import HubMqtt
from hub.registry import DeviceRegistry
from hub.settings import HubSettings
from hub.storage import PgStorage
from hub.writer import BatchWriter

log = logging.getLogger("hub")


class Hub:
    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.metrics = HubMetrics()
        self.registry = DeviceRegistry()
        self.storage = PgStorage(settings.database_url)
        self.mqtt = HubMqtt(settings, self._deliver)
        self.live = LivePublisher(self.mqtt.publish, self.registry, settings.live_min_interval_s)
        self.alerts = AlertEngine(self.registry, self.mqtt.publish, self.metrics)
        self.writer = BatchWriter(
            settings,
            self.storage,
            self.registry,
            self.metrics,
            self.mqtt.ack,
            live=self.live,
            alerts=self.alerts,
        )
        self.http = HealthServer(
            settings.http_host, settings.http_port, self.metrics.registry, self.health
        )
        self._writer_stop = threading.Event()
        self._writer_thread = threading.Thread(
            target=self.writer.run, args=(self._writer_stop,), name="hub-writer", daemon=True
        )

    def _deliver(self, msg: Any) -> None:
        self.writer.submit(msg)

    def health(self) -> tuple[bool, dict[str, Any]]:
        connected = self.mqtt.connected.is_set()
        ok = connected and self.writer.db_ok
        return ok, {
            "status": "ok" if ok else "degraded",
            "mqtt": "connected" if connected else "disconnected",
            "database": "ok" if self.writer.db_ok else "unavailable",
            "backlog": self.writer.inbox.qsize(),
            "devices": len(self.registry),
            "client_id": self.settings.client_id,
        }

    def start(self) -> None:
        self.http.start()
        self._writer_thread.start()
        self.mqtt.start()
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
        self._writer_thread.join(timeout=60)
        self.mqtt.stop()
        self.storage.close()
        self.http.stop()
        log.info("hub %s stopped", self.settings.client_id)


def run(settings: HubSettings, stop: threading.Event) -> int:
    hub = Hub(settings)
    hub.start()
    while not stop.wait(0.5):
        if hub.mqtt.fatal:
            log.error("%s — stopping", hub.mqtt.fatal)
            hub.stop()
            return 3
    hub.stop()
    return 0
