"""MQTT 5.0 packets as bytes, both ways: pure functions and a stream decoder, no I/O.

Written from the OASIS MQTT 5.0 specification, for what the hub uses: CONNECT, SUBSCRIBE,
PUBLISH (QoS 0/1), PUBACK/PUBREC/PUBCOMP, PINGREQ and DISCONNECT out; CONNACK, SUBACK,
PUBLISH, PUBACK, PUBREL, PINGRESP and DISCONNECT in. tests/unit/test_mqtt_paho.py checks it
against paho-mqtt's encoder and decoder; hub.mqtt.connection does the sockets and threads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from hub.batch import Message

Packet = tuple[int, bytes]  # a control packet: (first byte of its fixed header, its body)
Properties = dict[int, int | str | bytes]

CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBACK, PINGRESP, DISCONNECT = 9, 13, 14
PINGREQ_PACKET = b"\xc0\x00"
BUFFER_SIZE = 1 << 20
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


def reason_text(code: int) -> str:
    return REASONS.get(code, f"reason code 0x{code:02X}")


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


def encode_pubrel(packet_id: int, reason: int = 0) -> bytes:
    pid = packet_id.to_bytes(2, "big")
    return b"\x62\x02" + pid if reason == 0 else b"\x62\x03" + pid + bytes((reason,))


def encode_pubcomp(packet_id: int) -> bytes:
    return b"\x70\x02" + packet_id.to_bytes(2, "big")


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


def explain(code: int, body: bytes, props_at: int) -> str:
    """The reason code's name, and the broker's Reason String property if it sent one."""
    detail = read_properties(body, props_at)[0].get(0x1F) if len(body) > props_at else None
    return f"{reason_text(code)}: {detail}" if isinstance(detail, str) else reason_text(code)


def packet_id(body: bytes) -> int:
    if len(body) < 2:
        raise ProtocolError("packet too short for a packet identifier")
    return (body[0] << 8) | body[1]


class StreamDecoder:
    """Splits a byte stream into packets, whatever its chunking: PUBLISHes become ``Message``s,
    other packets ``Packet``s. Holds the incomplete packet a chunk ends with until the rest
    comes.

    Zero-copy for the reader: it receives straight into ``space()`` and says how many bytes
    came with ``filled``; ``feed`` is the same for bytes already in hand.
    """

    def __init__(self, size: int = BUFFER_SIZE) -> None:
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = 0  # _buf[:_start] holds the incomplete packet left over so far
        self._topics: dict[bytes, str] = {}

    @property
    def pending(self) -> int:
        """Bytes of an incomplete packet waiting for the rest."""
        return self._start

    def space(self) -> memoryview:
        """Where the next bytes go (never empty)."""
        return self._view[self._start :]

    def filled(self, n: int, now: float) -> tuple[list[Message], list[Packet]]:
        """``n`` bytes were written at the start of ``space()``: the packets they complete."""
        end = self._start + n
        data = bytes(self._view[:end])  # one copy per recv; every slice of it is then bytes
        messages: list[Message] = []
        control: list[Packet] = []
        pos = parse_packets(data, 0, end, self._topics, now, messages, control)
        self._start = end - pos
        if self._start:
            if self._start == len(self._buf):  # one packet larger than the buffer: grow it
                self._buf = bytearray(2 * len(self._buf))
                self._view = memoryview(self._buf)
            self._buf[: self._start] = data[pos:end]
        return messages, control

    def feed(self, chunk: bytes, now: float) -> tuple[list[Message], list[Packet]]:
        messages: list[Message] = []
        control: list[Packet] = []
        while chunk:
            space = self.space()
            n = min(len(space), len(chunk))
            space[:n] = chunk[:n]
            chunk = chunk[n:]
            more, other = self.filled(n, now)
            messages += more
            control += other
        return messages, control
