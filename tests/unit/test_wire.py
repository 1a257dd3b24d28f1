"""hub.mqtt.codec: the MQTT 5.0 packet codec, checked against the byte layouts of the OASIS spec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.batch import Message
from hub.mqtt.codec import (
    PINGREQ_PACKET,
    Packet,
    ProtocolError,
    decode_varint,
    encode_acks,
    encode_connect,
    encode_disconnect,
    encode_publish,
    encode_subscribe,
    encode_varint,
    parse_packets,
    read_properties,
)

NOW = 123.5


def parse(
    data: bytes, topics: dict[bytes, str] | None = None
) -> tuple[list[Message], list[Packet], int]:
    messages: list[Message] = []
    control: list[Packet] = []
    pos = parse_packets(
        data, 0, len(data), {} if topics is None else topics, NOW, messages, control
    )
    return messages, control, pos


# --- variable byte integers (spec §1.5.5, its table of boundaries) ------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_variable_byte_integer_boundaries(value: int, encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    assert encode_varint(value) == raw
    assert decode_varint(b"\xaa" + raw + b"\xbb", 1, len(raw) + 2) == (value, len(raw) + 1)


@pytest.mark.parametrize("encoded", ["", "80", "ff80", "ffffff"])
def test_a_partial_variable_byte_integer_is_incomplete(encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    assert decode_varint(raw, 0, len(raw)) is None


def test_a_five_byte_variable_byte_integer_is_malformed() -> None:
    with pytest.raises(ProtocolError, match="more than 4 bytes"):
        decode_varint(b"\xff\xff\xff\xff\x01", 0, 5)


@pytest.mark.parametrize("value", [-1, 268_435_456])
def test_out_of_range_variable_byte_integers_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_varint(value)


@given(st.integers(0, 268_435_455))
def test_variable_byte_integer_round_trip(value: int) -> None:
    raw = encode_varint(value)
    assert decode_varint(raw, 0, len(raw)) == (value, len(raw))


# --- encoding -----------------------------------------------------------------------------------


def test_connect_layout() -> None:
    packet = encode_connect(
        "hub",
        "u",
        "p",
        clean_start=False,
        keepalive=30,
        session_expiry=3600,
        receive_maximum=4000,
    )
    expected = (
        "10 1e"  # CONNECT, remaining length 30
        " 0004 4d515454 05"  # protocol name "MQTT", version 5
        " c0"  # flags: user name, password; clean start 0
        " 001e"  # keepalive 30
        " 08 11 00000e10 21 0fa0"  # properties: session expiry 3600, receive maximum 4000
        " 0003 687562 0001 75 0001 70"  # client id, user name, password
    )
    assert packet == bytes.fromhex(expected)


def test_connect_clean_start_without_credentials_and_clamped_receive_maximum() -> None:
    packet = encode_connect(
        "", None, None, clean_start=True, keepalive=0, session_expiry=0, receive_maximum=100_000
    )
    assert packet == bytes.fromhex("10 15 0004 4d515454 05 02 0000 08 11 00000000 21 ffff 0000")


def test_subscribe_layout() -> None:
    packet = encode_subscribe(1, [("a/+", 1), ("$share/g/b", 0)])
    assert packet == bytes.fromhex("82 16 0001 00 0003 612f2b 01 000a 2473686172652f672f62 00")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("t/1", b"hi"), "30 08 0003 742f31 00 6869"),
        (("t/1", b"hi", 1, 0x0102), "32 0a 0003 742f31 0102 00 6869"),
        (("t/1", b"", 1, 7), "32 08 0003 742f31 0007 00"),
    ],
)
def test_publish_layout(args: tuple[str, bytes], expected: str) -> None:
    assert encode_publish(*args) == bytes.fromhex(expected)


def test_retained_publish_sets_the_retain_flag() -> None:
    assert encode_publish("t", b"x", retain=True)[0] == 0x31


def test_acks_are_one_four_byte_packet_each_and_skip_qos_0() -> None:
    acks = [(1, 1), (0x1234, 1), (5, 0), (7, 2), (0xFFFF, 1)]
    assert encode_acks(acks) == bytes.fromhex("40020001 40021234 50020007 4002ffff")
    assert encode_acks([]) == b""


def test_pingreq_and_disconnect() -> None:
    assert PINGREQ_PACKET == b"\xc0\x00"
    assert encode_disconnect() == b"\xe0\x00"  # normal disconnection: reason code omitted
    assert encode_disconnect(0x04) == b"\xe0\x01\x04"


# --- parsing ------------------------------------------------------------------------------------

CONNACK = bytes.fromhex("20 03 01 00 00")  # session present, success, no properties
SUBACK = bytes.fromhex("90 04 0001 00 01")
PINGRESP = bytes.fromhex("d0 00")


def test_a_buffer_of_several_packets_and_a_partial_one() -> None:
    first = encode_publish("ems/v1/meters/a/readings", b'{"v":1}', 1, 1)
    second = encode_publish("ems/v1/meters/b/readings", b'{"v":2}', 1, 2)
    partial = encode_publish("ems/v1/meters/c/readings", b'{"v":3}', 1, 3)
    complete = CONNACK + first + SUBACK + second + PINGRESP
    for cut in range(len(partial)):
        messages, control, pos = parse(complete + partial[:cut])
        assert pos == len(complete), cut
        assert messages == [
            Message("ems/v1/meters/a/readings", b'{"v":1}', 1, 1, NOW),
            Message("ems/v1/meters/b/readings", b'{"v":2}', 2, 1, NOW),
        ]
        assert control == [(0x20, CONNACK[2:]), (0x90, SUBACK[2:]), (0xD0, b"")]


def test_a_replayed_retained_message_is_marked_as_such() -> None:
    live = encode_publish("ems/v1/meters/a/status", b"{}", 1, 1)
    replayed = encode_publish("ems/v1/meters/a/status", b"{}", 1, 2, retain=True)
    messages, _, _ = parse(live + replayed)
    assert [m.retain for m in messages] == [False, True]


def test_parsing_starts_and_stops_where_told() -> None:
    packet = encode_publish("t", b"p", 1, 9)
    data = b"junk" + packet + packet
    messages: list[Message] = []
    pos = parse_packets(data, 4, 4 + len(packet), {}, NOW, messages, [])
    assert pos == 4 + len(packet)
    assert messages == [Message("t", b"p", 9, 1, NOW)]


@pytest.mark.parametrize("size", [127, 128, 16_383, 16_384, 2_097_152])
def test_remaining_lengths_of_one_to_four_bytes(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    packet = encode_publish("t", payload)
    messages, _, pos = parse(packet)
    assert pos == len(packet)
    assert messages[0].payload == payload
    # ... and a partial one, cut inside its remaining length or its body, waits for the rest.
    for cut in (1, 2, 3, len(packet) - 1):
        assert parse(packet[:cut]) == ([], [], 0)


def user_property(key: str, value: str) -> bytes:
    return (
        b"\x26"
        + len(key).to_bytes(2, "big")
        + key.encode()
        + len(value).to_bytes(2, "big")
        + (value.encode())
    )


@pytest.mark.parametrize(
    "properties",
    [
        b"\x01\x01",  # payload format indicator
        b"\x02\x00\x00\x00\x3c" + b"\x03\x00\x10application/json",  # expiry, content type
        b"\x0b\x05",  # subscription identifier (a variable byte integer)
        user_property("k", "v") * 3,
        user_property("big", "x" * 200),  # property length of two bytes
    ],
)
def test_publish_properties_are_skipped(properties: bytes) -> None:
    body = b"\x00\x03t/1" + b"\x00\x05" + encode_varint(len(properties)) + properties + b"data"
    packet = b"\x32" + encode_varint(len(body)) + body
    messages, _, _ = parse(packet + packet)
    assert messages == [Message("t/1", b"data", 5, 1, NOW)] * 2


def test_read_properties() -> None:
    props = (
        b"\x13\x00\x3c"  # server keep alive 60
        b"\x21\x07\xd0"  # receive maximum 2000
        b"\x24\x01"  # maximum QoS 1
        b"\x27\x00\x10\x00\x00"  # maximum packet size
        b"\x1f\x00\x02hi"  # reason string
        b"\x16\x00\x01\xff" + user_property("k", "v")  # authentication data (binary)
    )
    data = b"\x00\x00" + encode_varint(len(props)) + props + b"rest"
    found, end = read_properties(data, 2)
    assert found == {0x13: 60, 0x21: 2000, 0x24: 1, 0x27: 0x100000, 0x1F: "hi", 0x16: b"\xff"}
    assert data[end:] == b"rest"
    assert read_properties(b"\x00", 0) == ({}, 1)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x03\x7f\x00\x00", "unknown property"),
        (b"\x05\x13\x00", "past the end"),
        (b"\x02\x13\x00\x3c", "past the property length"),
        (b"", "truncated"),
        (b"\x01\x01", "past the end"),  # a byte property without its byte
    ],
)
def test_malformed_properties(data: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        read_properties(data, 0)


@pytest.mark.parametrize(
    "packet",
    [
        bytes.fromhex("36 06 0001 74 0001 00"),  # QoS 3
        bytes.fromhex("32 05 0000 0001 00"),  # empty topic: a topic alias, never negotiated
        bytes.fromhex("30 02 0001"),  # too short
        bytes.fromhex("32 03 0001 74"),  # no room for the packet identifier
        bytes.fromhex("30 04 0005 7400"),  # topic runs past the packet
        bytes.fromhex("30 05 0001 74 05 00") + bytes(10),  # properties run past the packet
        bytes.fromhex("30 ff ff ff ff 01"),  # five-byte remaining length
    ],
)
def test_malformed_publish(packet: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(packet)


def test_topics_are_decoded_once() -> None:
    topics: dict[bytes, str] = {}
    packet = encode_publish("ems/v1/meters/ü/readings", b"x")
    messages, _, _ = parse(packet * 3, topics)
    assert messages[0].topic == "ems/v1/meters/ü/readings"
    assert messages[0].topic is messages[1].topic is messages[2].topic
    assert topics == {"ems/v1/meters/ü/readings".encode(): "ems/v1/meters/ü/readings"}


publishes = st.lists(
    st.tuples(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
        st.binary(max_size=300),
        st.sampled_from([0, 1, 2]),
        st.integers(1, 0xFFFF),
    ),
    min_size=1,
    max_size=20,
)


@given(publishes, st.data())
def test_publish_round_trip_across_any_split(
    items: list[tuple[str, bytes, int, int]], data: st.DataObject
) -> None:
    stream = b"".join(encode_publish(t, p, q, mid) for t, p, q, mid in items)
    cut = data.draw(st.integers(0, len(stream)))
    topics: dict[bytes, str] = {}
    messages: list[Message] = []
    control: list[Packet] = []
    # What a recv loop does: parse the first chunk, keep its tail, parse it with the rest.
    pos = parse_packets(stream[:cut], 0, cut, topics, NOW, messages, control)
    rest = stream[pos:]
    assert parse_packets(rest, 0, len(rest), topics, NOW, messages, control) == len(rest)
    assert control == []
    assert messages == [Message(t, p, mid if q else 0, q, NOW) for t, p, q, mid in items]
