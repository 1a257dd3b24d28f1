"""Small test helpers: MQTT connections and waiting for conditions with a deadline."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


# Test-only broker accounts with no pinned client id (tests/conftest.py): several connections
# at once, under ids of the test's choosing. Every other account is pinned to its own name.
TEST_HUB_USER, TEST_PORTAL_USER = "test-hub", "test-portal"


def client_id_for(username: str | None, prefix: str) -> str:
    """The broker accepts an account only under the client id of its own name (a meter's is its
    device id); the unpinned test accounts (and anonymous attempts) get a fresh id, so that
    they never take over each other's sessions."""
    if username is None or username in (TEST_HUB_USER, TEST_PORTAL_USER):
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
    return username


def mqtt_connect_result(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    timeout: float = 5.0,
    *,
    client_id: str | None = None,
) -> ReasonCode | str:
    """Connect once and report the broker's CONNACK reason code (or 'no answer')."""
    result: dict[str, Any] = {}
    done = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id if client_id is not None else client_id_for(username, "t"),
        protocol=mqtt.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(_c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        result["rc"] = rc
        done.set()

    client.on_connect = on_connect
    client.connect(host, port)
    client.loop_start()
    try:
        if not done.wait(timeout):
            return "no answer"
        return result["rc"]  # type: ignore[no-any-return]
    finally:
        client.disconnect()
        client.loop_stop()


class Subscriber:
    """A connected MQTT v5 client that records what it receives on its subscriptions."""

    def __init__(self, host: str, port: int, username: str, password: str, *topics: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.granted: list[ReasonCode] = []
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id_for(username, "sub"),
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        topics_ = topics

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
            if not rc.is_failure:
                c.subscribe([(t, 1) for t in topics_])

        def on_subscribe(_c: Any, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Any) -> None:
            self.granted = list(rcs)
            self._subscribed.set()

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append(msg)

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(5):
            raise AssertionError("subscription was not acknowledged")

    def received(self) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_as(
    broker: Any, username: str, password: str, topic: str, payload: bytes, qos: int = 1
) -> None:
    """Connect as ``username``, publish one message, wait for the broker's ack, disconnect."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id_for(username, "pub"), protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=qos).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
