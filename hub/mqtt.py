"""paho adapter: persistent session, shared subscription, manual acknowledgement.

Subscriptions are made in on_connect, so every reconnect restores them. Messages are
acknowledged by the writer only after the batch holding them is committed; until then they
stay in the broker's session and come back if the hub dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hub.batch import Message
from hub.protocol import DEVICE_EVENTS_TOPIC, STATUS_SUB
from hub.settings import HubSettings

log = logging.getLogger("hub.mqtt")

# CONNACK reasons that retrying cannot fix: report and stop instead of hammering the broker.
FATAL_CONNACK = {
    "Bad user name or password",
    "Not authorized",
    "Client identifier not valid",
    "Banned",
}


class HubMqtt:
    def __init__(self, settings: HubSettings, deliver: Callable[[Message], None]) -> None:
        self._settings = settings
        self._deliver = deliver
        self.connected = threading.Event()
        self.fatal: str | None = None
        self.intake_open = True
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        # paho's own reconnect backoff (1 s doubling to 30 s).
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self.client = client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        # A persistent session: what arrives while this hub is down waits for it.
        props.SessionExpiryInterval = self._settings.session_expiry_s
        # The in-flight window: at most this many unacknowledged readings are sent to us.
        props.ReceiveMaximum = self._settings.receive_maximum
        self.client.connect_async(
            self._settings.mqtt_host,
            self._settings.mqtt_port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        rc: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            if str(rc) in FATAL_CONNACK:
                self.fatal = f"the broker refused the hub's credentials ({rc})"
                client.disconnect()
            return
        s = self._settings
        client.subscribe(
            [
                (f"$share/{s.share_group}/ems/v1/meters/+/readings", 1),
                (STATUS_SUB, 1),
                (DEVICE_EVENTS_TOPIC, 1),
            ]
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        rcs: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in rcs if rc.is_failure]
        if refused:
            self.fatal = f"the broker refused the hub's subscriptions ({', '.join(refused)})"
            log.error("%s", self.fatal)
            return
        # Connected means "receiving": only once the subscriptions are in place.
        self.connected.set()
        s = self._settings
        log.info("connected to %s:%d as %s", s.mqtt_host, s.mqtt_port, s.client_id)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        rc: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if self.connected.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", rc)
        self.connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not self.intake_open:
            # Shutting down: leave it unacknowledged in the session; it comes back next time.
            return
        # Blocks when the writer's buffer is full: backpressure reaches the broker, which holds
        # the rest (nothing is dropped).
        self._deliver(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.monotonic()))

    def ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.client.publish(topic, payload, qos=qos)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2's loop_stop leaves the wake-up socket pair of loop_start open when the
        # thread ends on a disconnect that raced a reconnect; close it (idempotent).
        self.client._reset_sockets(sockpair_only=True)
