"""What the two paho-based clients share: one paho client per connection attempt, and the
translation of paho's callbacks into ``MqttClient`` events.

A fresh paho client per attempt is deliberate: paho keeps unacknowledged QoS 1 messages of a
lost connection and would resend them on its own, while the meter's buffer already resends
exactly what was not acknowledged. Starting clean keeps one source of truth (and old events
can be told from new ones: a callback from any client but the current one is ignored).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from firmware_stub.transport import PublishOutcome, Will

# CONNACK codes meaning "these credentials will not do": MQTT 5 (bad user name or password,
# not authorized) and MQTT 3.1.1 (4, 5).
REFUSED_CODES = frozenset({134, 135, 4, 5})
# PUBACK 0x10 "No matching subscribers": MQTT 5 does not count it as a failure (is_failure is
# False), but the broker dropped the message.
NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str
    password: str
    client_id: str
    keepalive: int = 60
    tls: ssl.SSLContext | None = None


class Phase(Enum):
    CLOSED = 0
    CONNECTING = 1
    CONNECTED = 2


class PahoSession:
    def __init__(self, address: BrokerAddress) -> None:
        self.address = address
        self.on_connect: Callable[[], None] | None = None
        self.on_connect_failed: Callable[[str, bool], None] | None = None
        self.on_disconnect: Callable[[str], None] | None = None
        self.on_publish: Callable[[int, PublishOutcome], None] | None = None
        self.on_message: Callable[[str, bytes], None] | None = None
        self._paho: mqtt.Client | None = None
        self._phase = Phase.CLOSED

    # ---- MqttClient ----------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        if self._paho is None:
            return 0
        return self._paho.publish(topic, payload, qos, retain).mid

    def subscribe(self, topic: str, qos: int) -> None:
        if self._paho is not None:
            self._paho.subscribe(topic, qos)

    def disconnect(self) -> None:
        if self._phase is Phase.CONNECTED and self._paho is not None:
            self._paho.disconnect()  # on_disconnect follows once DISCONNECT is written
        else:
            self._discard()

    def drop(self) -> None:
        sock = self._paho.socket() if self._paho is not None else None
        if isinstance(sock, socket.socket) and self._phase is not Phase.CLOSED:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # no DISCONNECT; the read side sees the end

    def is_connected(self) -> bool:
        return self._phase is Phase.CONNECTED

    # ---- for the subclasses --------------------------------------------------------------

    def _new_attempt(self, will: Will) -> mqtt.Client:
        self._discard()
        a = self.address
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=a.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        c.username_pw_set(a.username, a.password)
        c.will_set(will.topic, will.payload, will.qos, will.retain)
        if a.tls is not None:
            c.tls_set_context(a.tls)
        c.max_inflight_messages_set(0)  # the meter has its own window
        c.on_connect = self._paho_connect
        c.on_disconnect = self._paho_disconnect
        c.on_publish = self._paho_publish
        c.on_message = self._paho_message
        self._paho, self._phase = c, Phase.CONNECTING
        return c

    def _discard(self) -> None:
        """Forget the current attempt or connection without events, closing its socket."""
        c, self._paho, self._phase = self._paho, None, Phase.CLOSED
        sock = c.socket() if c is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _end(self, c: mqtt.Client, reason: str) -> None:
        """The current attempt or connection ended: exactly one event says how."""
        if c is not self._paho or self._phase is Phase.CLOSED:
            return
        was, self._phase = self._phase, Phase.CLOSED
        if was is Phase.CONNECTED:
            if self.on_disconnect:
                self.on_disconnect(reason)
        elif self.on_connect_failed:
            self.on_connect_failed(reason, False)

    # ---- paho callbacks ------------------------------------------------------------------

    def _paho_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if c is not self._paho or self._phase is not Phase.CONNECTING:
            return
        if rc.is_failure:
            self._phase = Phase.CLOSED  # the broker closes the socket; paho then cleans up
            if self.on_connect_failed:
                self.on_connect_failed(str(rc), rc.value in REFUSED_CODES)
            return
        self._phase = Phase.CONNECTED
        if self.on_connect:
            self.on_connect()

    def _paho_disconnect(self, c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._end(c, str(rc))

    def _paho_publish(self, c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        if c is self._paho and self.on_publish:
            self.on_publish(mid, publish_outcome(rc))

    def _paho_message(self, c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if c is self._paho and self.on_message:
            self.on_message(msg.topic, bytes(msg.payload))


def publish_outcome(rc: ReasonCode) -> PublishOutcome:
    """The PUBACK reason code as the meter needs it (MQTT 3.1.1: paho reports Success)."""
    if rc.value == NO_MATCHING_SUBSCRIBERS:
        return PublishOutcome.UNROUTED
    return PublishOutcome.REFUSED if rc.is_failure else PublishOutcome.ACCEPTED
