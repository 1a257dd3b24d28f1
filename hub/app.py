"""Composition root of the hub (the ingest pipeline is assembled here)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from hub.http import HealthServer
from hub.metrics import HubMetrics
from hub.settings import HubSettings

log = logging.getLogger("hub")


def run(settings: HubSettings, stop: threading.Event) -> int:
    metrics = HubMetrics()

    def health() -> tuple[bool, dict[str, Any]]:
        return True, {"status": "ok", "client_id": settings.client_id}

    http = HealthServer(settings.http_host, settings.http_port, metrics.registry, health)
    http.start()
    log.info("hub %s serving /health on %s:%d", settings.client_id, settings.http_host, http.port)
    stop.wait()
    http.stop()
    return 0
