"""The hub's connection to Mosquitto over MQTT 5.0: socket, TLS, keepalive, reconnect.

It implements what the hub uses (hub.mqtt.codec has the packets): a persistent session with a
Receive Maximum, SUBSCRIBE on every connect, PUBLISH in (QoS 0/1, QoS 2 answered correctly),
acknowledgements sent by the caller after its commit, PUBLISH out (QoS 0/1), keepalive,
reconnect with the one back-off (common.backoff), optional TLS. No topic aliases (Topic Alias
Maximum stays 0, so the broker never sends them), no enhanced AUTH.

Why not paho-mqtt: draining a queued backlog of QoS 1 messages, acknowledging each, paho 2.2
managed 4.3-5.6 k msg/s (manual acks; its auto-acks no better) where this client managed
28-104 k and mosquitto_sub 25-59 k (bench/wire.py, 50,000 messages, three runs on a shared,
loaded 2-core machine: the spread is the machine's). paho reads each fixed header a byte per
recv() and handles one packet per callback; this client parses a whole recv at a time.

Threads. One reader thread owns the connection's life: it connects, reads, parses, delivers,
answers control packets, sends PINGREQ and reconnects. Any other thread may call ack,
ack_many, publish and stop. Every write, from whichever thread, goes through ``_lock``: a
packet is written with one ``sendall`` under the lock, so packets from different threads
never interleave on the wire (a PUBACK must not land in the middle of a PUBLISH), and the
packet-id and in-flight bookkeeping of our own QoS 1 publishes changes under the same lock.
Reads need no lock: only the reader thread reads.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from common.backoff import Backoff, BackoffPolicy
from hub.batch import Message
from hub.mqtt.codec import (
    CONNACK,
    DISCONNECT,
    FATAL_CONNACK,
    PINGREQ_PACKET,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBREC,
    PUBREL,
    SUBACK,
    ProtocolError,
    StreamDecoder,
    encode_acks,
    encode_connect,
    encode_disconnect,
    encode_pubcomp,
    encode_publish,
    encode_pubrel,
    encode_subscribe,
    explain,
    packet_id,
    read_properties,
    reason_text,
)
from hub.mqtt.transport import PlainTransport, TlsTransport, open_transport

log = logging.getLogger("hub.mqtt")

Deliver = Callable[[list[Message]], None]
Transport = PlainTransport | TlsTransport

# Reconnect delays: 1 s doubling to 30 s, full jitter (each drawn from (0, d]), so hubs that
# lost the same broker do not come back in lockstep.
RECONNECT_BACKOFF = BackoffPolicy(initial_s=1.0, maximum_s=30.0, factor=2.0, jitter=1.0)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Exactly what one broker connection needs (hub.app builds it from HubSettings)."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None = field(default=None, repr=False)  # never in a log line
    keepalive: int = 30
    # Our in-flight window: at most this many unacknowledged PUBLISHes from the broker.
    receive_maximum: int = 0xFFFF
    session_expiry_s: int = 0
    clean_start: bool = False
    tls: ssl.SSLContext | None = None  # None: plain TCP
    connect_timeout_s: float = 10.0
    backoff: BackoffPolicy = RECONNECT_BACKOFF

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}{' (TLS)' if self.tls is not None else ''}"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name against ``ca_file`` (or the system's
    CAs without one). Raises OSError or ssl.SSLError if the file cannot be loaded."""
    return ssl.create_default_context(cafile=ca_file)


class _Lost(Exception):
    """The connection ended for a reason worth retrying."""


class _Fatal(Exception):
    """The broker refused something retrying cannot fix."""


class MqttConnection:
    """The BrokerAdapter (hub.mqtt.adapter) for Mosquitto, or any MQTT 5.0 broker.

    Persistent session, subscriptions on every (re)connect, acknowledgement by the caller."""

    def __init__(
        self,
        settings: ConnectionSettings,
        deliver_many: Deliver,
        subscriptions: list[tuple[str, int]],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._deliver_many = deliver_many
        self._subscriptions = list(subscriptions)
        self._backoff = Backoff(settings.backoff, rng or random.Random())  # noqa: S311 - jitter
        self.connected = threading.Event()  # set once subscribed: "connected" means receiving
        self.fatal: str | None = None
        self.intake_open = True
        self.attempts = 0  # connection attempts (counters: for tests and metrics)
        self.connects = 0  # of which subscribed
        self.pongs = 0
        # time.monotonic() when the broker last sent anything (the health probe reads it).
        self.last_rx = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Guarded by _lock (see the module docstring): the writable socket (set once the
        # CONNACK is in, None while down), the reader's socket (for stop), the last write time
        # (keepalive), and our QoS 1 publishes awaiting their PUBACK (resent on reconnect).
        self._lock = threading.Lock()
        self._sock: Transport | None = None
        self._reader_sock: Transport | None = None
        self._last_tx = 0.0
        self._outgoing: dict[int, bytes] = {}
        self._next_id = 0
        self._sub_id = 0
        self._server_receive_max = 0xFFFF
        self._drop_warned = False
        # Reader thread only.
        self._ka = settings.keepalive
        self._connack = False
        self._session_present = False

    # --- any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-mqtt", daemon=True)
        self._thread.start()

    def stop(self, *, disconnect: bool = True, timeout: float = 10.0) -> None:
        """DISCONNECT (normal: the session and its unacknowledged messages stay), close, join.

        ``disconnect=False`` drops the connection without a DISCONNECT, as a crash would.
        """
        self._stopping.set()
        with self._lock:
            if disconnect and self._sock is not None:
                self._write_locked(self._sock, encode_disconnect(0))
            self._sock = None
            reader = self._reader_sock
        if reader is not None:
            reader.shutdown()  # wakes the reader out of recv
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the MQTT reader thread did not stop within %.0f s", timeout)

    def ack(self, mid: int, qos: int) -> None:
        if qos:
            self._send(encode_acks(((mid, qos),)))

    def ack_many(self, acks: Iterable[tuple[int, int]]) -> None:
        """All acknowledgements in one write. While disconnected they are dropped: the broker
        redelivers those messages (same packet ids) when the session resumes."""
        data = encode_acks(acks)
        if data:
            self._send(data)

    def publish(self, topic: str, payload: bytes, qos: int = 0, *, retain: bool = False) -> None:
        if qos == 0:
            self._send(encode_publish(topic, payload, retain=retain))  # dropped while down
            return
        if qos != 1:
            raise ValueError("publish supports QoS 0 and 1")
        with self._lock:
            if self._sock is None or len(self._outgoing) >= self._server_receive_max:
                if not self._drop_warned:  # one line per outage, not per message
                    self._drop_warned = True
                    why = "not connected" if self._sock is None else "the broker's window is full"
                    log.warning("dropping QoS 1 publishes (first to %s): %s", topic, why)
                return
            pid = self._new_id()
            packet = encode_publish(topic, payload, 1, pid, retain=retain)
            self._outgoing[pid] = packet
            self._write_locked(self._sock, packet)

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        """QoS 0 publishes in one write (live events after a rollup: thousands at once)."""
        if messages:
            self._send(b"".join([encode_publish(topic, payload) for topic, payload in messages]))

    def ping(self, idle_s: float) -> None:
        """A PINGREQ if connected and nothing has come from the broker for ``idle_s``: its
        answer refreshes ``last_rx`` (hub.health). Extra PINGREQs are allowed any time."""
        if self.connected.is_set() and time.monotonic() - self.last_rx >= idle_s:
            self._send(PINGREQ_PACKET)

    def _send(self, data: bytes) -> None:
        with self._lock:
            if self._sock is not None:
                self._write_locked(self._sock, data)

    def _write(self, sock: Transport, data: bytes) -> None:
        with self._lock:
            self._write_locked(sock, data)

    def _write_locked(self, sock: Transport, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            # The reader notices the shut-down socket and logs and reconnects: one place does.
            self._sock = None
            sock.shutdown()
            return
        self._last_tx = time.monotonic()

    def _new_id(self) -> int:
        while True:
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._outgoing and self._next_id != self._sub_id:
                return self._next_id

    # --- the reader thread --------------------------------------------------------------------

    def _run(self) -> None:
        failing: str | None = None  # the last failed attempt's reason: each new one logged once
        while not self._stopping.is_set():
            self.attempts += 1
            connects = self.connects
            try:
                self._session()
                reason = "connection closed"
            except _Fatal as exc:
                self.fatal = str(exc)
                log.error("%s — not reconnecting", self.fatal)
                return
            except (OSError, ProtocolError, _Lost) as exc:
                reason = str(exc) or type(exc).__name__
            except Exception as exc:  # a bug, here or in deliver_many: stop loudly, not silently
                self.fatal = f"the MQTT reader failed: {exc!r}"
                log.exception("%s", self.fatal)
                return
            if self._stopping.is_set():
                return
            if self.connects != connects:  # this attempt got through: a new outage begins
                log.warning(
                    "lost the connection to %s (%s); reconnecting", self._settings.where, reason
                )
                self._backoff.reset()
                failing = None
            elif reason != failing:
                log.warning(
                    "cannot connect to %s (%s); retrying with backoff", self._settings.where, reason
                )
                failing = reason
            self._stopping.wait(self._backoff.next_delay())

    def _session(self) -> None:
        s = self._settings
        # A refused certificate is an ssl.SSLError, an OSError: logged and retried, since the
        # broker's certificate may be fixed while we wait; never connected meanwhile.
        sock = open_transport(s.host, s.port, s.tls, s.connect_timeout_s)
        try:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._reader_sock = sock
            self._connack, self._ka = False, s.keepalive
            self._write(
                sock,
                encode_connect(
                    s.client_id,
                    s.username,
                    s.password,
                    clean_start=s.clean_start,
                    keepalive=s.keepalive,
                    session_expiry=s.session_expiry_s,
                    receive_maximum=s.receive_maximum,
                ),
            )
            self._read_loop(sock)
        finally:
            self.connected.clear()
            with self._lock:
                self._sock = self._reader_sock = None
            sock.close()

    def _read_loop(self, sock: Transport) -> None:
        stream = StreamDecoder()
        last_rx = self.last_rx = time.monotonic()
        tick = 0.0
        while True:
            # recv wakes up at least every quarter keepalive to look after the keepalive (set
            # only when it changes: settimeout costs system calls).
            if tick != (self._ka / 4 if self._ka else 1.0):
                tick = self._ka / 4 if self._ka else 1.0
                sock.settimeout(tick)
            try:
                n = sock.recv_into(stream.space())
            except TimeoutError:
                n = -1
            now = time.monotonic()
            if n == 0:
                if self._stopping.is_set():
                    return
                raise _Lost("the broker closed the connection")
            if n > 0:
                last_rx = self.last_rx = now
                messages, control = stream.filled(n, now)
                for first, body in control:
                    self._control(sock, first, body)
                if messages:
                    if not self._connack:
                        raise ProtocolError("PUBLISH before CONNACK")
                    if self.intake_open:
                        # Shutting down (intake closed): not delivered, not acknowledged; they
                        # stay in the session and come back next time.
                        self._deliver_many(messages)
            limit = 1.5 * self._ka if self._connack else self._settings.connect_timeout_s
            if limit and now - last_rx > limit:
                raise _Lost(f"nothing from the broker for {limit:g} s")
            if self._connack and self._ka and now - self._last_tx >= 0.75 * self._ka:
                self._write(sock, PINGREQ_PACKET)  # 0.75: so that one goes out within keepalive

    def _control(self, sock: Transport, first: int, body: bytes) -> None:
        kind = first >> 4
        if not self._connack and kind != CONNACK:
            raise ProtocolError(f"packet type {kind} before CONNACK")
        if kind == PUBACK:  # for one of our QoS 1 publishes (a refusal changes nothing)
            with self._lock:
                self._outgoing.pop(packet_id(body), None)
        elif kind == PINGRESP:
            self.pongs += 1
        elif kind == CONNACK and not self._connack:
            self._on_connack(sock, body)
        elif kind == SUBACK:
            self._on_suback(body)
        elif kind == PUBREL:  # QoS 2 in (only if the broker upgrades us): release → complete
            self._write(sock, encode_pubcomp(packet_id(body)))
        elif kind == PUBREC:  # we never publish QoS 2: "Packet identifier not found"
            self._write(sock, encode_pubrel(packet_id(body), 0x92))
        elif kind == PUBCOMP:
            pass
        elif kind == DISCONNECT:
            raise _Lost(f"the broker disconnected us ({explain(body[0] if body else 0, body, 1)})")
        else:
            self._write(sock, encode_disconnect(0x82))
            raise ProtocolError(f"unexpected MQTT packet type {kind} from the broker")

    def _on_connack(self, sock: Transport, body: bytes) -> None:
        if len(body) < 2:
            raise ProtocolError("malformed CONNACK")
        code = body[1]
        props = read_properties(body, 2)[0] if len(body) > 2 else {}
        if code >= 0x80:
            text = explain(code, body, 2)
            if code in FATAL_CONNACK:
                raise _Fatal(f"the broker refused the connection ({text})")
            raise _Lost(f"the broker refused the connection ({text})")
        self._connack = True
        self._session_present = bool(body[0] & 1)
        server_ka = props.get(0x13)  # Server Keep Alive overrides ours [MQTT-3.2.2-21]
        if isinstance(server_ka, int):
            self._ka = server_ka
        receive_max = props.get(0x21, 0xFFFF)
        with self._lock:
            self._server_receive_max = receive_max if isinstance(receive_max, int) else 0xFFFF
            self._sock = sock
            self._drop_warned = False
            # Unacknowledged QoS 1 publishes are resent, DUP set, same ids [MQTT-4.4.0-1].
            for packet in self._outgoing.values():
                self._write_locked(sock, bytes((packet[0] | 0x08,)) + packet[1:])
            if self._subscriptions:
                self._sub_id = self._new_id()
                self._write_locked(sock, encode_subscribe(self._sub_id, self._subscriptions))
        if not self._subscriptions:  # a publisher only: up once the CONNACK is in
            self._up()

    def _on_suback(self, body: bytes) -> None:
        if packet_id(body) != self._sub_id:
            raise ProtocolError("SUBACK for a SUBSCRIBE we did not send")
        codes = body[read_properties(body, 2)[1] :]
        if len(codes) != len(self._subscriptions):
            raise ProtocolError("SUBACK with the wrong number of reason codes")
        refused = [
            f"{f} ({reason_text(c)})"
            for (f, _), c in zip(self._subscriptions, codes, strict=True)
            if c >= 0x80
        ]
        if refused:
            with self._lock:
                if self._sock is not None:
                    self._write_locked(self._sock, encode_disconnect(0))
            raise _Fatal(f"the broker refused the subscription to {', '.join(refused)}")
        lower = [f for (f, qos), c in zip(self._subscriptions, codes, strict=True) if c < qos]
        if lower:
            log.warning("the broker granted a lower QoS than asked on %s", ", ".join(lower))
        self._up()

    def _up(self) -> None:
        self.connects += 1
        self.connected.set()
        log.info(
            "connected to %s as %s (%s)",
            self._settings.where,
            self._settings.client_id,
            "session resumed" if self._session_present else "new session",
        )
