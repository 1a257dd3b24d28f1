"""The hub's /health sees a hung database or broker within 5 s (HTTP 503), and recovers."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from typing import Any

from devkit.helpers import wait_for
from devkit.hubkit import start_hub
from hub.app import Hub

DETECT_WITHIN_S = 5.0


def get_health(hub: Hub) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{hub.http.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_noticed_while_frozen(hub: Hub, pid: int, field: str) -> None:
    """SIGSTOP ``pid``: /health answers 503 with ``field`` unavailable within 5 s; after
    SIGCONT it answers 200 again. The process is always continued."""
    wait_for(lambda: get_health(hub)[0] == 200, timeout=10, what="a healthy hub")
    os.kill(pid, signal.SIGSTOP)
    try:
        frozen = time.monotonic()
        _status, body = wait_for(
            lambda: (answer := get_health(hub))[0] == 503 and answer,
            timeout=DETECT_WITHIN_S,
            what=f"/health to report the {field} unavailable",
        )
        assert time.monotonic() - frozen <= DETECT_WITHIN_S
        assert body[field] == "unavailable", body
        assert body["status"] == "degraded"
    finally:
        os.kill(pid, signal.SIGCONT)
    _status, body = wait_for(
        lambda: (answer := get_health(hub))[0] == 200 and answer,
        timeout=15,
        what="/health to recover",
    )
    assert body[field] == "ok"


def test_health_reports_a_hung_database(database_url: str, broker, pg_server) -> None:
    hub = start_hub(database_url, broker)
    try:
        # The postmaster: no new connection is accepted while it is stopped.
        pid = int((pg_server.data_dir / "postmaster.pid").read_text().split()[0])
        assert_noticed_while_frozen(hub, pid, "database")
    finally:
        hub.stop()


def test_health_reports_a_hung_broker(database_url: str, broker) -> None:
    hub = start_hub(database_url, broker)
    try:
        # The connection stays open while Mosquitto is stopped: only its silence tells.
        assert broker.server.proc is not None
        assert_noticed_while_frozen(hub, broker.server.proc.pid, "broker")
        assert hub.mqtt.connects == 1  # the same session throughout
    finally:
        hub.stop()
