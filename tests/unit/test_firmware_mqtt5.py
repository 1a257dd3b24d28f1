"""The simulator's MQTT 5 codec: packets split from a byte stream however TCP cuts it."""

from __future__ import annotations

import pytest

from firmware_stub import mqtt5


def test_a_publish_is_the_fixed_header_topic_packet_id_no_properties_and_the_payload() -> None:
    packet = mqtt5.publish(mqtt5.topic_field("a/b"), b"{}", 1, False, 7)
    assert packet == b"\x32\x0a\x00\x03a/b\x00\x07\x00{}"
    retained = mqtt5.publish(mqtt5.topic_field("s"), b"x", 0, True, 0)
    assert retained == b"\x31\x05\x00\x01s\x00x"  # QoS 0: no packet id


def test_a_long_publish_gets_a_multi_byte_remaining_length() -> None:
    payload = b"x" * 300
    packet = mqtt5.publish(mqtt5.topic_field("t"), payload, 1, False, 1)
    (parsed,), used = mqtt5.split(bytearray(packet))
    assert used == len(packet) and packet[1:3] == b"\xb2\x02"  # 306 = 0x32 + 2 * 128
    assert parsed == (mqtt5.PUBLISH, 0x02, packet[3:])


@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize(
    "size", [120, 121, 122, 123, 124, 16376, 16377, 16378, 16379, 16380, 200_000]
)
def test_publishes_of_every_length_around_the_varint_boundaries_split_back(
    size: int, qos: int
) -> None:
    # Remaining length 127/128 and 16383/16384 (1, 2 and 3 bytes) are written by separate
    # branches: each must give a packet the splitter reads back whole.
    payload = bytes(range(256)) * (size // 256) + b"p" * (size % 256)
    packet = mqtt5.publish(mqtt5.topic_field("t"), payload, qos, False, 0xABCD if qos else 0)
    (parsed,), used = mqtt5.split(bytearray(packet))
    assert used == len(packet)
    kind, flags, body = parsed
    assert (kind, flags) == (mqtt5.PUBLISH, qos << 1)
    msg = mqtt5.incoming(flags, body)
    assert (msg.topic, msg.payload, msg.mid) == ("t", payload, 0xABCD if qos else 0)


def test_split_keeps_an_incomplete_packet_for_the_next_read() -> None:
    stream = mqtt5.puback(1) + b"\x40\x03\x00\x02\x10" + mqtt5.puback(3)
    buf = bytearray(stream[:-2])
    packets, used = mqtt5.split(buf)
    assert [mqtt5.puback_of(body) for _, _, body in packets] == [(1, 0), (2, 0x10)]
    del buf[:used]
    buf += stream[-2:]
    (last,), used = mqtt5.split(buf)
    assert mqtt5.puback_of(last[2]) == (3, 0) and used == len(buf)


def test_an_incoming_publish_skips_its_properties() -> None:
    body = b"\x00\x03c/d" + b"\x00\x09" + b"\x02\x01\x01" + b'{"cmd":1}'  # format indicator
    msg = mqtt5.incoming(0x02, body)
    assert (msg.topic, msg.qos, msg.mid, msg.payload) == ("c/d", 1, 9, b'{"cmd":1}')


def test_garbage_from_the_broker_is_a_malformed_packet_not_a_crash() -> None:
    with pytest.raises(mqtt5.MalformedPacket):
        mqtt5.split(bytearray(b"\x30\xff\xff\xff\xff\x01"))
    with pytest.raises(mqtt5.MalformedPacket):
        mqtt5.incoming(0x02, b"\x00\x02\xff\xfe\x00\x01\x00")


def test_connect_carries_the_will_and_the_credentials() -> None:
    packet = mqtt5.connect("id", "user", "pw", 60, ("st", b"off", 1, True))
    ((kind, _flags, body),) = mqtt5.split(bytearray(packet))[0]
    assert kind == mqtt5.CONNECT
    assert body[:7] == b"\x00\x04MQTT\x05" and body[7] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    assert body.endswith(b"\x00\x04user\x00\x02pw")
    assert b"\x00\x02st\x00\x03off" in body
