"""bench/ingest.py ends its mosquitto_sub drain session before the hub's run (issue 13 item 15):
otherwise the broker keeps queueing the whole run for a subscriber that never returns."""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest import DRAIN_USER, drain_command, end_drain_session
from tests.conftest import BrokerInfo


def _session_present(broker: BrokerInfo, client_id: str) -> bool:
    """Resume ``client_id``'s persistent session and report whether the broker still had it."""
    flags: dict[str, bool] = {}
    done = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    client.username_pw_set(client_id, broker.hub_password)  # the account pinned to this id

    def on_connect(_c: Any, _u: Any, f: Any, rc: Any, _p: Any) -> None:
        assert not rc.is_failure, rc
        flags["present"] = bool(f.session_present)
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert done.wait(5), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return flags["present"]


def test_the_drain_session_is_gone_after_the_drain(broker: BrokerInfo) -> None:
    subprocess.run([*drain_command(broker), "-E"], check=True, stdout=subprocess.DEVNULL)
    end_drain_session(broker)
    assert _session_present(broker, DRAIN_USER) is False
