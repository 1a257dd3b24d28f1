"""A lean MQTT 5.0 client for the hub's hot path: many small QoS 1 PUBLISHes in, PUBACKs out.

Written from the OASIS MQTT 5.0 specification; it implements what the hub uses and nothing
else: CONNECT with a persistent session and a Receive Maximum, SUBSCRIBE on every connect,
PUBLISH in (QoS 0/1, QoS 2 answered correctly), acknowledgements sent by the caller after its
commit, PUBLISH out (QoS 0/1), keepalive, reconnect with backoff, optional TLS. No topic
aliases (Topic Alias Maximum stays 0, so the broker never sends them), no enhanced AUTH.

Threads. One reader thread owns the connection's life: it connects, reads, parses, delivers,
answers control packets, sends PINGREQ and reconnects. Any other thread may call ack,
ack_many, publish and stop. Every write, from whichever thread, goes through ``_lock``: a
packet is written with one ``sendall`` under the lock, so packets from different threads
never interleave on the wire (a PUBACK must not land in the middle of a PUBLISH), and the
packet-id and in-flight bookkeeping of our own QoS 1 publishes changes under the same lock.
Reads need no lock: only the reader thread reads.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from hub.batch import Message
from hub.settings import HubSettings

log = logging.getLogger("hub.wire")

Deliver = Callable[[list[Message]], None]
Packet = tuple[int, bytes]  # a control packet: (first byte of its fixed header, its body)
Properties = dict[int, int | str | bytes]

CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBACK, PINGRESP, DISCONNECT = 9, 13, 14
PINGREQ_PACKET = b"\xc0\x00"
BUFFER_SIZE = 1 << 20
BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 30.0
TOPIC_CACHE_MAX = 100_000

REASONS = {
    0x00: "Success", 0x04: "Disconnect with will message", 0x80: "Unspecified error",
    0x81: "Malformed packet", 0x82: "Protocol error", 0x83: "Implementation specific error",
    0x84: "Unsupported protocol version", 0x85: "Client identifier not valid",
    0x86: "Bad user name or password", 0x87: "Not authorized", 0x88: "Server unavailable",
    0x89: "Server busy", 0x8A: "Banned", 0x8B: "Server shutting down",
    0x8C: "Bad authentication method", 0x8D: "Keep alive timeout", 0x8E: "Session taken over",
    0x8F: "Topic filter invalid", 0x90: "Topic name invalid", 0x91: "Packet identifier in use",
    0x92: "Packet identifier not found", 0x93: "Receive maximum exceeded",
    0x94: "Topic alias invalid", 0x95: "Packet too large", 0x96: "Message rate too high",
    0x97: "Quota exceeded", 0x98: "Administrative action", 0x99: "Payload format invalid",
    0x9A: "Retain not supported", 0x9B: "QoS not supported", 0x9C: "Use another server",
    0x9D: "Server moved", 0x9E: "Shared subscriptions not supported",
    0x9F: "Connection rate exceeded", 0xA0: "Maximum connect time",
    0xA1: "Subscription identifiers not supported", 0xA2: "Wildcard subscriptions not supported",
}  # fmt: skip
# CONNACK reasons that retrying cannot fix: report them and stop instead of hammering the broker.
FATAL_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})

# Property identifier → wire type (MQTT 5.0 §2.2.2.2); only needed to skip or read them.
_PROP_BYTE = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
_PROP_U16 = frozenset({0x13, 0x21, 0x22, 0x23})
_PROP_U32 = frozenset({0x02, 0x11, 0x18, 0x27})
_PROP_STR = frozenset({0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F})
_PROP_BIN = frozenset({0x09, 0x16})
_PROP_VARINT, _PROP_PAIR = 0x0B, 0x26


class ProtocolError(Exception):
    """The bytes from the broker are not valid MQTT 5.0 (or use what we did not negotiate)."""


class _Lost(Exception):
    """The connection ended for a reason worth retrying."""


class _Fatal(Exception):
    """The broker refused something retrying cannot fix."""


def reason_text(code: int) -> str:
    return REASONS.get(code, f"reason code 0x{code:02X}")


# --- codec (pure) -------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    if not 0 <= value <= 268_435_455:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        digit, value = value & 0x7F, value >> 7
        out.append(digit | 0x80 if value else digit)
        if not value:
            return bytes(out)


def decode_varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """(value, offset after it), or None if ``data[pos:end]`` holds only part of it."""
    value = 0
    for i in range(4):
        if pos + i >= end:
            return None
        digit = data[pos + i]
        value |= (digit & 0x7F) << (7 * i)
        if not digit & 0x80:
            return value, pos + i + 1
    raise ProtocolError("malformed variable byte integer (more than 4 bytes)")


def _str(text: str) -> bytes:
    return _bin(text.encode())


def _bin(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("string longer than 65,535 bytes")
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def encode_connect(
    client_id: str,
    username: str | None,
    password: str | None,
    *,
    clean_start: bool,
    keepalive: int,
    session_expiry: int,
    receive_maximum: int,
) -> bytes:
    flags = 0x02 if clean_start else 0x00
    payload = _str(client_id)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
    if password is not None:
        flags |= 0x40
        payload += _bin(password.encode())
    props = struct.pack(">BIBH", 0x11, session_expiry, 0x21, max(1, min(receive_maximum, 0xFFFF)))
    head = b"\x00\x04MQTT\x05" + struct.pack(">BH", flags, keepalive)
    return _packet(0x10, head + encode_varint(len(props)) + props + payload)


def encode_subscribe(packet_id: int, subscriptions: Sequence[tuple[str, int]]) -> bytes:
    # Options byte = maximum QoS only: No Local must be 0 on shared subscriptions.
    topics = b"".join(_str(f) + bytes((qos,)) for f, qos in subscriptions)
    return _packet(0x82, packet_id.to_bytes(2, "big") + b"\x00" + topics)


def encode_publish(
    topic: str, payload: bytes, qos: int = 0, packet_id: int = 0, *, retain: bool = False
) -> bytes:
    first = 0x30 | qos << 1 | int(retain)
    pid = packet_id.to_bytes(2, "big") if qos else b""
    return _packet(first, _str(topic) + pid + b"\x00" + payload)


def encode_acks(acks: Iterable[tuple[int, int]]) -> bytes:
    """PUBACK (QoS 1) or PUBREC (QoS 2) per message, success, reason code omitted; QoS 0 skipped.

    Each is four bytes, type|flags, remaining length 2, packet id: one big-endian word each.
    """
    words = [(0x40020000 if qos == 1 else 0x50020000) | mid for mid, qos in acks if qos]
    return struct.pack(f">{len(words)}I", *words)


def encode_disconnect(reason: int = 0) -> bytes:
    return b"\xe0\x00" if reason == 0 else bytes((0xE0, 1, reason))


def read_properties(data: bytes, pos: int) -> tuple[Properties, int]:
    """The properties starting at ``pos`` (user properties skipped) and the offset after them."""
    decoded = decode_varint(data, pos, len(data))
    if decoded is None:
        raise ProtocolError("truncated property length")
    length, pos = decoded
    end = pos + length
    if end > len(data):
        raise ProtocolError("properties run past the end of the packet")
    try:
        props = _properties(data, pos, end)
    except IndexError:
        raise ProtocolError("a property runs past the end of the packet") from None
    return props, end


def _properties(data: bytes, pos: int, end: int) -> Properties:
    props: Properties = {}
    while pos < end:
        ident = data[pos]
        pos += 1
        if ident in _PROP_BYTE:
            props[ident], pos = data[pos], pos + 1
        elif ident in _PROP_U16:
            props[ident], pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif ident in _PROP_U32:
            props[ident], pos = int.from_bytes(data[pos : pos + 4], "big"), pos + 4
        elif ident == _PROP_VARINT:
            value = decode_varint(data, pos, end)
            if value is None:
                raise ProtocolError("truncated property")
            props[ident], pos = value
        elif ident in _PROP_STR or ident in _PROP_BIN or ident == _PROP_PAIR:
            for _ in range(2 if ident == _PROP_PAIR else 1):
                size = int.from_bytes(data[pos : pos + 2], "big")
                raw, pos = data[pos + 2 : pos + 2 + size], pos + 2 + size
            if ident != _PROP_PAIR:
                props[ident] = raw.decode("utf-8", "replace") if ident in _PROP_STR else raw
        else:
            raise ProtocolError(f"unknown property 0x{ident:02X}")
    if pos != end:
        raise ProtocolError("a property runs past the property length")
    return props


def parse_packets(
    data: bytes,
    pos: int,
    end: int,
    topics: dict[bytes, str],
    now: float,
    messages: list[Message],
    control: list[Packet],
) -> int:
    """Parse every complete packet in ``data[pos:end]``: PUBLISHes are appended to ``messages``,
    the others to ``control``. Returns the offset of the first incomplete packet (``end`` if
    none). ``topics`` caches topic bytes → str, since a fleet's topics repeat all day.

    This is the hot loop (one pass per recv, hundreds of PUBLISHes each): locals only, the
    common one-byte lengths inline, one payload slice and one Message per PUBLISH.
    """
    new = Message
    add = messages.append
    cached = topics.get
    while end - pos >= 2:
        first = data[pos]
        length = data[pos + 1]
        body = pos + 2
        if length & 0x80:
            decoded = decode_varint(data, pos + 1, end)
            if decoded is None:
                break
            length, body = decoded
        nxt = body + length
        if nxt > end:
            break
        if first >> 4 == PUBLISH:
            qos = (first >> 1) & 3
            if length < 3 or qos == 3:
                raise ProtocolError("malformed PUBLISH")
            topic_end = body + 2 + ((data[body] << 8) | data[body + 1])
            p = topic_end + 2 if qos else topic_end
            if p >= nxt or topic_end == body + 2:
                raise ProtocolError("malformed PUBLISH (or a topic alias, which we never allow)")
            mid = (data[topic_end] << 8) | data[topic_end + 1] if qos else 0
            plen = data[p]
            if plen < 0x80:
                p += 1 + plen
            else:
                decoded = decode_varint(data, p, nxt)
                if decoded is None:
                    raise ProtocolError("malformed PUBLISH property length")
                p = decoded[1] + decoded[0]
            if p > nxt:
                raise ProtocolError("PUBLISH properties run past the packet")
            raw = data[body + 2 : topic_end]
            topic = cached(raw)
            if topic is None:
                if len(topics) >= TOPIC_CACHE_MAX:
                    topics.clear()
                # The broker validates UTF-8; "replace" keeps a bad one from wedging the session
                # (the hub dead-letters topics it cannot parse).
                topic = topics[raw] = raw.decode("utf-8", "replace")
            add(new(topic, data[p:nxt], mid, qos, now, first & 1 == 1))
        else:
            control.append((first, data[body:nxt]))
        pos = nxt
    return pos


def _explain(code: int, body: bytes, props_at: int) -> str:
    """The reason code's name, and the broker's Reason String property if it sent one."""
    detail = read_properties(body, props_at)[0].get(0x1F) if len(body) > props_at else None
    return f"{reason_text(code)}: {detail}" if isinstance(detail, str) else reason_text(code)


def _packet_id(body: bytes) -> int:
    if len(body) < 2:
        raise ProtocolError("packet too short for a packet identifier")
    return (body[0] << 8) | body[1]


# --- the client ---------------------------------------------------------------------------------


class WireClient:
    """Persistent session, subscriptions on every (re)connect, acknowledgement by the caller."""

    def __init__(
        self,
        settings: HubSettings,
        deliver_many: Deliver,
        subscriptions: list[tuple[str, int]],
        *,
        keepalive: int = 30,
        tls: ssl.SSLContext | None = None,
        clean_start: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        self._settings = settings
        self._deliver_many = deliver_many
        self._subscriptions = list(subscriptions)
        self._keepalive = keepalive
        self._tls = tls
        self._clean_start = clean_start
        self._connect_timeout = connect_timeout
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
        self._topics: dict[bytes, str] = {}
        # Guarded by _lock (see the module docstring): the writable socket (set once the
        # CONNACK is in, None while down), the reader's socket (for stop), the last write time
        # (keepalive), and our QoS 1 publishes awaiting their PUBACK (resent on reconnect).
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader_sock: socket.socket | None = None
        self._last_tx = 0.0
        self._outgoing: dict[int, bytes] = {}
        self._next_id = 0
        self._sub_id = 0
        self._server_receive_max = 0xFFFF
        self._drop_warned = False
        # Reader thread only.
        self._ka = keepalive
        self._connack = False
        self._session_present = False

    @property
    def _where(self) -> str:
        return f"{self._settings.mqtt_host}:{self._settings.mqtt_port}"

    # --- any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-wire", daemon=True)
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
            self._shutdown(reader)  # wakes the reader out of recv
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

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        if qos == 0:
            self._send(encode_publish(topic, payload))  # dropped while disconnected
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
            packet = encode_publish(topic, payload, 1, pid)
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

    def _write(self, sock: socket.socket, data: bytes) -> None:
        with self._lock:
            self._write_locked(sock, data)

    def _write_locked(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            # The reader notices the shut-down socket and logs and reconnects: one place does.
            self._sock = None
            self._shutdown(sock)
            return
        self._last_tx = time.monotonic()

    def _new_id(self) -> int:
        while True:
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._outgoing and self._next_id != self._sub_id:
                return self._next_id

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    # --- the reader thread --------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_MIN_S
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
                log.warning("lost the connection to %s (%s); reconnecting", self._where, reason)
                delay, failing = BACKOFF_MIN_S, None
            elif reason != failing:
                log.warning("cannot connect to %s (%s); retrying with backoff", self._where, reason)
                failing = reason
            # Full jitter: hubs that lost the same broker do not come back in lockstep.
            self._stopping.wait(random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _session(self) -> None:
        s = self._settings
        raw = socket.create_connection((s.mqtt_host, s.mqtt_port), timeout=self._connect_timeout)
        sock = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # acks are latency
            if self._tls is not None:
                sock = self._tls.wrap_socket(raw, server_hostname=s.mqtt_host)
            with self._lock:
                if self._stopping.is_set():
                    return
                self._reader_sock = sock
            self._connack, self._ka = False, self._keepalive
            self._write(
                sock,
                encode_connect(
                    s.client_id,
                    s.mqtt_username,
                    s.mqtt_password,
                    clean_start=self._clean_start,
                    keepalive=self._keepalive,
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
            raw.close()

    def _read_loop(self, sock: socket.socket) -> None:
        buf = bytearray(BUFFER_SIZE)
        view = memoryview(buf)
        start = 0  # buf[:start] holds the incomplete packet left over from the last recv
        last_rx = self.last_rx = time.monotonic()
        tick = 0.0
        while True:
            # recv wakes up at least every quarter keepalive to look after the keepalive (set
            # only when it changes: settimeout costs system calls).
            if tick != (self._ka / 4 if self._ka else 1.0):
                tick = self._ka / 4 if self._ka else 1.0
                sock.settimeout(tick)
            try:
                n = sock.recv_into(view[start:])
            except TimeoutError:
                n = -1
            now = time.monotonic()
            if n == 0:
                if self._stopping.is_set():
                    return
                raise _Lost("the broker closed the connection")
            if n > 0:
                last_rx = self.last_rx = now
                end = start + n
                data = bytes(view[:end])  # one copy per recv; every slice of it is then bytes
                messages: list[Message] = []
                control: list[Packet] = []
                pos = parse_packets(data, 0, end, self._topics, now, messages, control)
                start = end - pos
                if start:
                    if start == len(buf):  # one packet larger than the buffer: grow it
                        buf = bytearray(2 * len(buf))
                        view = memoryview(buf)
                    buf[:start] = data[pos:end]
                for first, body in control:
                    self._control(sock, first, body)
                if messages:
                    if not self._connack:
                        raise ProtocolError("PUBLISH before CONNACK")
                    if self.intake_open:
                        # Shutting down (intake closed): not delivered, not acknowledged; they
                        # stay in the session and come back next time.
                        self._deliver_many(messages)
            limit = 1.5 * self._ka if self._connack else self._connect_timeout
            if limit and now - last_rx > limit:
                raise _Lost(f"nothing from the broker for {limit:g} s")
            if self._connack and self._ka and now - self._last_tx >= 0.75 * self._ka:
                self._write(sock, PINGREQ_PACKET)  # 0.75: so that one goes out within keepalive

    def _control(self, sock: socket.socket, first: int, body: bytes) -> None:
        kind = first >> 4
        if not self._connack and kind != CONNACK:
            raise ProtocolError(f"packet type {kind} before CONNACK")
        if kind == PUBACK:  # for one of our QoS 1 publishes (a refusal changes nothing)
            with self._lock:
                self._outgoing.pop(_packet_id(body), None)
        elif kind == PINGRESP:
            self.pongs += 1
        elif kind == CONNACK and not self._connack:
            self._on_connack(sock, body)
        elif kind == SUBACK:
            self._on_suback(body)
        elif kind == PUBREL:  # QoS 2 in (only if the broker upgrades us): release → complete
            self._write(sock, b"\x70\x02" + _packet_id(body).to_bytes(2, "big"))
        elif kind == PUBREC:  # we never publish QoS 2: "Packet identifier not found"
            self._write(sock, b"\x62\x03" + _packet_id(body).to_bytes(2, "big") + b"\x92")
        elif kind == PUBCOMP:
            pass
        elif kind == DISCONNECT:
            raise _Lost(f"the broker disconnected us ({_explain(body[0] if body else 0, body, 1)})")
        else:
            self._write(sock, encode_disconnect(0x82))
            raise ProtocolError(f"unexpected MQTT packet type {kind} from the broker")

    def _on_connack(self, sock: socket.socket, body: bytes) -> None:
        if len(body) < 2:
            raise ProtocolError("malformed CONNACK")
        code = body[1]
        props = read_properties(body, 2)[0] if len(body) > 2 else {}
        if code >= 0x80:
            text = _explain(code, body, 2)
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
        if _packet_id(body) != self._sub_id:
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
            self._where,
            self._settings.client_id,
            "session resumed" if self._session_present else "new session",
        )
