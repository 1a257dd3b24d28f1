"""The few MQTT 5 packets a meter sends and receives, as bytes: a pure codec, no I/O.

Enough for a meter (CONNECT with a will, PUBLISH QoS 0/1, SUBSCRIBE, PUBACK, PINGREQ,
DISCONNECT) and no more: no properties are sent, received ones are skipped. Kept apart from
the client (``aio_client.py``) so that a shared codec (the hub's, once it has one) can take its
place without touching the connection logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from paho.mqtt.reasoncodes import ReasonCode

CONNECT: Final = 1
CONNACK: Final = 2
PUBLISH: Final = 3
PUBACK: Final = 4
SUBSCRIBE: Final = 8
SUBACK: Final = 9
PINGREQ_PACKET: Final = 12
PINGRESP: Final = 13
DISCONNECT: Final = 14

PINGREQ: Final = b"\xc0\x00"
DISCONNECT_NORMAL: Final = b"\xe0\x00"


class MalformedPacket(ValueError):
    """The broker sent bytes that are not an MQTT 5 packet."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _bin(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect(
    client_id: str,
    username: str,
    password: str,
    keepalive: int,
    will: tuple[str, bytes, int, bool] | None,
) -> bytes:
    """CONNECT with clean start; ``will`` is (topic, payload, qos, retain)."""
    flags = 0x80 | 0x40 | 0x02  # user name, password, clean start
    tail = b""
    if will is not None:
        topic, payload, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        tail = b"\x00" + _str(topic) + _bin(payload)  # no will properties
    body = (
        b"\x00\x04MQTT\x05"
        + bytes((flags,))
        + keepalive.to_bytes(2, "big")
        + b"\x00"  # no properties
        + _str(client_id)
        + tail
        + _str(username)
        + _bin(password.encode())
    )
    return _packet(CONNECT << 4, body)


def publish(topic: bytes, payload: bytes, qos: int, retain: bool, mid: int) -> bytes:
    """PUBLISH; ``topic`` is the length-prefixed UTF-8 topic (``topic_field``), which a meter
    computes once rather than per reading. Built in one formatting step: a meter sends one
    per reading, and the chain of concatenations was four copies and ~2 us."""
    n = len(topic) + len(payload) + (3 if qos else 1)  # + packet id + empty properties
    first = (PUBLISH << 4) | (qos << 1) | retain
    if n < 128:  # a single reading
        head = bytes((first, n))
    elif n < 16384:  # a store-and-forward batch of up to ~200 readings
        head = bytes((first, (n & 0x7F) | 0x80, n >> 7))
    else:
        head = bytes((first,)) + _varint(n)
    if qos:
        return b"%s%s%c%c\x00%s" % (head, topic, mid >> 8, mid & 0xFF, payload)
    return b"%s%s\x00%s" % (head, topic, payload)


def topic_field(topic: str) -> bytes:
    return _str(topic)


def subscribe(topic: str, qos: int, mid: int) -> bytes:
    return _packet(
        (SUBSCRIBE << 4) | 0x02, mid.to_bytes(2, "big") + b"\x00" + _str(topic) + bytes((qos,))
    )


def puback(mid: int) -> bytes:
    return b"\x40\x02" + mid.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A PUBLISH from the broker."""

    topic: str
    payload: bytes
    qos: int
    mid: int


def split(buf: bytearray) -> tuple[list[tuple[int, int, bytes]], int]:
    """The complete packets at the start of ``buf`` as (type, flags, body), and how many bytes
    they took; an incomplete tail waits for more data."""
    packets: list[tuple[int, int, bytes]] = []
    pos, end = 0, len(buf)
    while end - pos >= 2:
        first = buf[pos]
        length, shift, i = 0, 0, pos + 1
        while True:
            if i >= end:
                return packets, pos
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MalformedPacket("remaining length longer than four bytes")
        if i + length > end:
            break
        packets.append((first >> 4, first & 0x0F, bytes(buf[i : i + length])))
        pos = i + length
    return packets, pos


def _skip_properties(body: bytes, at: int) -> int:
    length, shift = 0, 0
    while True:
        if at >= len(body):
            raise MalformedPacket("properties cut short")
        byte = body[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return at + length
        shift += 7


def connack_reason(body: bytes) -> int:
    if len(body) < 2:
        raise MalformedPacket("CONNACK shorter than two bytes")
    return body[1]


def puback_of(body: bytes) -> tuple[int, int]:
    """(packet id, reason code) of a PUBACK; a bare one means success."""
    if len(body) < 2:
        raise MalformedPacket("PUBACK shorter than two bytes")
    return int.from_bytes(body[:2], "big"), body[2] if len(body) > 2 else 0


def incoming(flags: int, body: bytes) -> Incoming:
    qos = (flags >> 1) & 0x03
    if len(body) < 2:
        raise MalformedPacket("PUBLISH without a topic")
    n = int.from_bytes(body[:2], "big")
    try:
        topic = body[2 : 2 + n].decode()
    except UnicodeDecodeError:
        raise MalformedPacket("PUBLISH topic is not UTF-8") from None
    at = 2 + n
    mid = 0
    if qos:
        mid = int.from_bytes(body[at : at + 2], "big")
        at += 2
    at = _skip_properties(body, at)
    return Incoming(topic, body[at:], qos, mid)


def disconnect_reason(body: bytes) -> int:
    return body[0] if body else 0


def reason_text(packet: int, code: int) -> str:
    """The reason code's name as MQTT 5 spells it ("Bad user name or password"...); only
    called on the rare paths (a refused connection, a broker's DISCONNECT)."""
    try:
        return str(ReasonCode(packet, identifier=code))
    except KeyError:
        return f"reason code {code:#04x}"
