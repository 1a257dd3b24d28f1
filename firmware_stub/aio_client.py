"""The meter on asyncio: a lean MQTT 5 client on an ``asyncio.Protocol``, for ``ems-sim``.

One process drives thousands of meters, each with its own connection, so the cost per
reading is what matters: paho (here before) spent most of a reading's CPU on its own
bookkeeping (property objects, reason-code objects, locks, a callback per packet and socket
hooks around it). This client keeps per connection only what a meter needs - a receive buffer,
the next packet id, a keepalive timer - and a publish is one ``bytes`` build and one
``transport.write``. The packets themselves come from ``mqtt5.py`` (a pure codec, swappable).

Rules of ``transport.MqttClient`` kept here: events arrive from the loop (``data_received`` /
``connection_lost``), never from inside a call; each attempt ends in exactly one of
``on_connect`` / ``on_connect_failed``; a connection that was up ends in exactly one
``on_disconnect``. Each attempt is its own ``_Connection``: events of an abandoned one are
dropped, so an old socket cannot speak for the new one. Opening the TCP (and TLS) connection
waits for a slot of an optional shared ``asyncio.Semaphore`` (a fleet connecting 10,000
meters at once would overflow the broker's listen backlog).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum
from typing import cast

from paho.mqtt.packettypes import PacketTypes

from firmware_stub import mqtt5
from firmware_stub.paho_session import NO_MATCHING_SUBSCRIBERS, REFUSED_CODES, BrokerAddress
from firmware_stub.transport import PublishOutcome, Will


class Phase(Enum):
    CONNECTING = 0
    CONNECTED = 1
    CLOSED = 2


class _Connection(asyncio.Protocol):
    """One connection attempt and, if the broker accepts it, the connection."""

    def __init__(self, client: AsyncioMqttClient, will: Will) -> None:
        self.client = client
        self.will = will
        self.transport: asyncio.Transport | None = None
        self.phase = Phase.CONNECTING
        self.buf = bytearray()
        self.ended_why: str | None = None  # why we close it (a broker DISCONNECT, a bad packet)
        self.gated = False  # holds a slot of the client's connect gate (until TCP is up)
        self.wrote = False  # a packet was written since the last keepalive tick
        self.ping_at: float | None = None  # PINGREQ outstanding since
        self.keepalive: asyncio.TimerHandle | None = None

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance).
        self.transport = transport = cast(asyncio.Transport, transport)
        # The gate guards the broker's listen backlog (TCP and TLS set-up), not its CONNACKs:
        # holding it until CONNACK would make a slow broker's latency cap the connect rate.
        self.release()
        if self.client._conn is not self:  # abandoned while connecting
            transport.abort()
            return
        a, w = self.client.address, self.will
        self.write(
            mqtt5.connect(
                a.client_id,
                a.username,
                a.password,
                a.keepalive,
                (w.topic, w.payload, w.qos, w.retain),
            )
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if not buf and len(data) == 4 and data[0] == 0x40 and data[1] == 2:
            # The usual read: one bare PUBACK (success, no properties); skip the splitting.
            client = self.client
            if client._conn is self and client.on_publish is not None:
                client.on_publish((data[2] << 8) | data[3], PublishOutcome.ACCEPTED)
            return
        buf += data
        try:
            packets, used = mqtt5.split(buf)
            del buf[:used]
            for kind, flags, body in packets:
                if self.client._conn is not self:
                    return
                self.packet(kind, flags, body)
        except mqtt5.MalformedPacket as exc:
            self.close(f"malformed packet from the broker: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        if self.keepalive is not None:
            self.keepalive.cancel()
        why = self.ended_why or (str(exc) if exc else "connection closed by the broker")
        self.client._ended(self, why)

    # ---- packets -------------------------------------------------------------------------

    def packet(self, kind: int, flags: int, body: bytes) -> None:
        client = self.client
        if kind == mqtt5.PUBACK:
            mid, code = mqtt5.puback_of(body)
            if client.on_publish is not None:
                client.on_publish(mid, outcome(code))
        elif kind == mqtt5.PUBLISH:
            msg = mqtt5.incoming(flags, body)
            if msg.qos == 1:
                self.write(mqtt5.puback(msg.mid))
            if client.on_message is not None:
                client.on_message(msg.topic, msg.payload)
        elif kind == mqtt5.PINGRESP:
            self.ping_at = None
        elif kind == mqtt5.CONNACK:
            self.connack(mqtt5.connack_reason(body))
        elif kind == mqtt5.DISCONNECT:
            code = mqtt5.disconnect_reason(body)
            self.close(mqtt5.reason_text(PacketTypes.DISCONNECT, code))
        # SUBACK: the meter does not wait for it (a refused subscription shows as no commands).

    def connack(self, code: int) -> None:
        if self.phase is not Phase.CONNECTING:
            self.close("a second CONNACK")
            return
        if code >= 0x80:
            self.phase = Phase.CLOSED
            self.client._refused(self, mqtt5.reason_text(PacketTypes.CONNACK, code), code)
            self.close(None)
            return
        self.phase = Phase.CONNECTED
        loop = self.client._loop
        self.keepalive = loop.call_later(self.client.address.keepalive / 2, self.tick)
        self.client._up(self)

    def tick(self) -> None:
        """Keepalive: PINGREQ after half the keepalive without sending; a PINGRESP that has
        not come within the keepalive ends the connection (the broker or the path is gone)."""
        loop = self.client._loop
        now, keepalive = loop.time(), self.client.address.keepalive
        if self.ping_at is not None and now - self.ping_at >= keepalive:
            self.close("no PINGRESP within the keepalive")
            return
        if self.ping_at is None and not self.wrote:  # half a keepalive without sending
            self.ping_at = now
            self.write(mqtt5.PINGREQ)
        self.wrote = False
        self.keepalive = loop.call_later(keepalive / 2, self.tick)

    # ---- helpers -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.wrote = True  # a flag, not a timestamp: no clock read per reading

    def close(self, why: str | None, *, abort: bool = False) -> None:
        """End the connection; ``connection_lost`` then reports ``why``."""
        if self.ended_why is None:
            self.ended_why = why
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def release(self) -> None:
        if self.gated:
            self.gated = False
            gate = self.client._gate
            if gate is not None:
                gate.release()


def outcome(code: int) -> PublishOutcome:
    """The PUBACK reason code as the meter needs it."""
    if code == NO_MATCHING_SUBSCRIBERS:
        return PublishOutcome.UNROUTED
    return PublishOutcome.REFUSED if code >= 0x80 else PublishOutcome.ACCEPTED


class AsyncioMqttClient:
    def __init__(
        self,
        address: BrokerAddress,
        *,
        loop: asyncio.AbstractEventLoop,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.address = address
        self.on_connect: Callable[[], None] | None = None
        self.on_connect_failed: Callable[[str, bool], None] | None = None
        self.on_disconnect: Callable[[str], None] | None = None
        self.on_publish: Callable[[int, PublishOutcome], None] | None = None
        self.on_message: Callable[[str, bytes], None] | None = None
        self._loop = loop
        self._gate = gate
        self._conn: _Connection | None = None
        self._attempt: asyncio.Task[None] | None = None
        self._mid = 0
        self._topics: dict[str, bytes] = {}  # topic -> its encoded field (a meter has few)

    # ---- MqttClient ----------------------------------------------------------------------

    def connect(self, will: Will) -> None:
        self._discard()
        conn = self._conn = _Connection(self, will)
        self._attempt = self._loop.create_task(self._open(conn))

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        conn = self._conn
        if conn is None or conn.phase is not Phase.CONNECTED:
            return 0
        mid = self._next_mid() if qos else 0
        field = self._topics.get(topic)
        if field is None:
            field = self._topics[topic] = mqtt5.topic_field(topic)
        conn.write(mqtt5.publish(field, payload, qos, retain, mid))
        return mid

    def subscribe(self, topic: str, qos: int) -> None:
        conn = self._conn
        if conn is not None and conn.phase is Phase.CONNECTED:
            conn.write(mqtt5.subscribe(topic, qos, self._next_mid()))

    def disconnect(self) -> None:
        conn = self._conn
        if conn is not None and conn.phase is Phase.CONNECTED:
            conn.write(mqtt5.DISCONNECT_NORMAL)
            conn.close("disconnected")  # on_disconnect follows from connection_lost
        else:
            self._discard()

    def drop(self) -> None:
        conn = self._conn
        if conn is not None and conn.phase is not Phase.CLOSED:
            conn.close("connection dropped", abort=True)  # no DISCONNECT: the will goes out

    def is_connected(self) -> bool:
        return self._conn is not None and self._conn.phase is Phase.CONNECTED

    # ---- the attempt ---------------------------------------------------------------------

    async def _open(self, conn: _Connection) -> None:
        a = self.address
        try:
            if self._gate is not None:
                await self._gate.acquire()
                conn.gated = True
                if self._conn is not conn:
                    conn.release()
                    return
            await self._loop.create_connection(
                lambda: conn,
                a.host,
                a.port,
                ssl=a.tls,
                server_hostname=a.host if a.tls is not None else None,
            )
        except asyncio.CancelledError:
            conn.release()
            raise
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError is one)
            conn.release()
            self._failed(conn, str(exc) or type(exc).__name__)

    def _next_mid(self) -> int:
        self._mid = self._mid % 0xFFFF + 1
        return self._mid

    # ---- events from the connection ------------------------------------------------------

    def _up(self, conn: _Connection) -> None:
        if conn is self._conn and self.on_connect is not None:
            self.on_connect()

    def _refused(self, conn: _Connection, reason: str, code: int) -> None:
        if conn is self._conn:
            self._conn = None
            if self.on_connect_failed is not None:
                self.on_connect_failed(reason, code in REFUSED_CODES)

    def _failed(self, conn: _Connection, reason: str) -> None:
        if conn is self._conn:
            self._conn = None
            if self.on_connect_failed is not None:
                self.on_connect_failed(reason, False)

    def _ended(self, conn: _Connection, reason: str) -> None:
        if conn is not self._conn:
            return
        was = conn.phase
        conn.phase, self._conn = Phase.CLOSED, None
        if was is Phase.CONNECTED:
            if self.on_disconnect is not None:
                self.on_disconnect(reason)
        elif self.on_connect_failed is not None:
            self.on_connect_failed(reason, False)

    def _discard(self) -> None:
        """Forget the current attempt or connection without events, closing its socket."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.phase = Phase.CLOSED
            conn.close(None, abort=True)
        if self._attempt is not None and not self._attempt.done():
            self._attempt.cancel()
        self._attempt = None
