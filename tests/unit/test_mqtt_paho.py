"""hub.mqtt.codec against paho-mqtt 2.x, an independent MQTT 5.0 implementation.

A real paho client sits on one end of a loopback TCP connection, its loop driven by hand; the
test plays the broker on the other end. What paho writes must be what our encoder writes for
the same fields (CONNECT, SUBSCRIBE, PUBLISH, PUBACK, PINGREQ, DISCONNECT, PUBREL, PUBCOMP), our
decoder must read paho's packets (PUBLISH with any properties, PUBACK) to the same fields, and
paho must read ours (PUBLISH at QoS 0/1/2, PUBACK, PUBREL, PUBCOMP) to the same fields.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.batch import Message
from hub.mqtt.codec import (
    PINGREQ_PACKET,
    Packet,
    StreamDecoder,
    encode_acks,
    encode_connect,
    encode_disconnect,
    encode_pubcomp,
    encode_publish,
    encode_pubrel,
    encode_subscribe,
    packet_id,
    read_properties,
)

NOW = 7.25
CONNACK_OK = bytes.fromhex("20 03 00 00 00")  # no session, success, no properties
PAHO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class PahoPeer:
    """A paho client connected to us over loopback; ``pump`` runs its loop until a condition."""

    def __init__(
        self,
        client_id: str = "hub",
        username: str | None = None,
        password: str | None = None,
        *,
        keepalive: int = 60,
        clean_start: bool = True,
        properties: Properties | None = None,
    ) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.received: list[tuple[str, bytes, int, int, bool]] = []
        self.published: list[int] = []
        self.client.on_message = lambda _c, _u, m: self.received.append(
            (m.topic, m.payload, m.qos, m.mid, m.retain)
        )
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.published.append(mid)
        # Without a loop thread, paho writes each packet at once: connect() sends CONNECT.
        self.client.connect(
            "127.0.0.1",
            self.server.getsockname()[1],
            keepalive=keepalive,
            clean_start=clean_start,
            properties=properties,
        )
        self.sock, _ = self.server.accept()
        self.sock.settimeout(5)

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes paho wrote."""
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, f"paho closed the connection after {out.hex()}"
            out += chunk
        return out

    def read_packets(self, n: int) -> tuple[list[Message], list[Packet]]:
        """The next ``n`` packets paho writes, split and decoded by our StreamDecoder; paho's
        loop runs meanwhile (it answers what we sent it)."""
        stream = StreamDecoder()
        messages: list[Message] = []
        control: list[Packet] = []
        deadline = time.monotonic() + 5.0
        while len(messages) + len(control) < n:
            # What paho queued inside a callback (an acknowledgement) waits for its loop.
            assert self.client.loop_write() == mqtt.MQTT_ERR_SUCCESS
            left = deadline - time.monotonic()
            assert left > 0, f"paho wrote {len(messages) + len(control)} of {n} packets"
            ready, _, _ = select.select([self.client.socket(), self.sock], [], [], left)
            if self.client.socket() in ready:
                assert self.client.loop_read() == mqtt.MQTT_ERR_SUCCESS
            if self.sock in ready:
                chunk = self.sock.recv(65536)
                assert chunk, "paho closed the connection"
                more, other = stream.feed(chunk, NOW)
                messages += more
                control += other
        assert stream.pending == 0
        return messages, control

    def pump(self, done: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, "paho did not get there in time"
            select.select([self.client.socket()], [], [], left)
            assert self.client.loop_read() == mqtt.MQTT_ERR_SUCCESS

    def close(self) -> None:
        self.client._reset_sockets()  # paho's socket and its wake-up socket pair
        self.sock.close()
        self.server.close()


def connected_peer() -> PahoPeer:
    peer = PahoPeer()
    _, control = peer.read_packets(1)
    assert control[0][0] == 0x10  # its CONNECT
    peer.sock.sendall(CONNACK_OK)
    peer.pump(peer.client.is_connected)
    return peer


def text(min_size: int = 0, max_size: int = 30) -> st.SearchStrategy[str]:
    # MQTT strings exclude U+0000 [MQTT-1.5.4-2]; topic names exclude the wildcards.
    return st.text(
        st.characters(codec="utf-8", blacklist_characters="\x00+#"),
        min_size=min_size,
        max_size=max_size,
    )


# --- what paho writes, we write ----------------------------------------------------------------


@PAHO
@given(
    client_id=text(1, 23),
    credentials=st.one_of(st.none(), st.tuples(text(), st.one_of(st.none(), text()))),
    clean_start=st.booleans(),
    keepalive=st.integers(0, 0xFFFF),
    session_expiry=st.integers(0, 0xFFFFFFFF),
    receive_maximum=st.integers(1, 0xFFFF),
)
def test_connect_is_what_paho_writes(
    client_id: str,
    credentials: tuple[str, str | None] | None,
    clean_start: bool,
    keepalive: int,
    session_expiry: int,
    receive_maximum: int,
) -> None:
    username, password = credentials if credentials is not None else (None, None)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry
    props.ReceiveMaximum = receive_maximum
    ours = encode_connect(
        client_id,
        username,
        password,
        clean_start=clean_start,
        keepalive=keepalive,
        session_expiry=session_expiry,
        receive_maximum=receive_maximum,
    )
    peer = PahoPeer(
        client_id,
        username,
        password,
        keepalive=keepalive,
        clean_start=clean_start,
        properties=props,
    )
    try:
        assert peer.read(len(ours)) == ours
    finally:
        peer.close()


@PAHO
@given(
    st.lists(
        st.tuples(text(1, 30).map(lambda t: "$share/hub/" + t), st.sampled_from([0, 1, 2])),
        min_size=1,
        max_size=5,
    )
)
def test_subscribe_is_what_paho_writes(subscriptions: list[tuple[str, int]]) -> None:
    peer = connected_peer()
    try:
        _, mid = peer.client.subscribe(subscriptions)
        ours = encode_subscribe(mid, subscriptions)
        assert peer.read(len(ours)) == ours
    finally:
        peer.close()


@PAHO
@given(topic=text(1, 40), payload=st.binary(max_size=300), qos=st.sampled_from([0, 1]))
def test_publish_is_what_paho_writes(topic: str, payload: bytes, qos: int) -> None:
    peer = connected_peer()
    try:
        info = peer.client.publish(topic, payload, qos=qos)
        ours = encode_publish(topic, payload, qos, info.mid if qos else 0)
        assert peer.read(len(ours)) == ours
    finally:
        peer.close()


def test_pingreq_and_disconnect_are_what_paho_writes() -> None:
    peer = connected_peer()
    try:
        peer.client._send_pingreq()  # paho sends one when its keepalive is due
        assert peer.read(len(PINGREQ_PACKET)) == PINGREQ_PACKET
        peer.client.disconnect()
        assert peer.read(2) == encode_disconnect()
    finally:
        peer.close()


# --- what paho writes, we read ------------------------------------------------------------------


def publish_properties() -> st.SearchStrategy[Properties]:
    """Any PUBLISH properties a client may send (a topic alias aside: we never allow one)."""

    def build(values: dict[str, Any]) -> Properties:
        props = Properties(PacketTypes.PUBLISH)
        for name, value in values.items():
            setattr(props, name, value)
        return props

    return st.fixed_dictionaries(
        {},
        optional={
            "PayloadFormatIndicator": st.sampled_from([0, 1]),
            "MessageExpiryInterval": st.integers(0, 0xFFFFFFFF),
            "ContentType": text(max_size=300),
            "ResponseTopic": text(1, 30),
            "CorrelationData": st.binary(max_size=300),
            "UserProperty": st.lists(st.tuples(text(), text()), min_size=1, max_size=3),
        },
    ).map(build)


@PAHO
@given(
    st.lists(
        st.tuples(
            text(1, 40), st.binary(max_size=300), st.sampled_from([0, 1]), st.booleans(), st.data()
        ),
        min_size=1,
        max_size=5,
    )
)
def test_we_read_what_paho_publishes(items: list[tuple[str, bytes, int, bool, Any]]) -> None:
    peer = connected_peer()
    try:
        expected = []
        for topic, payload, qos, retain, data in items:
            props = data.draw(publish_properties())
            info = peer.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
            expected.append(Message(topic, payload, info.mid if qos else 0, qos, NOW, retain))
        messages, control = peer.read_packets(len(items))
        assert control == []
        assert messages == expected
    finally:
        peer.close()


@PAHO
@given(st.lists(st.tuples(text(1, 40), st.binary(max_size=50)), min_size=1, max_size=5))
def test_we_read_pahos_pubacks(items: list[tuple[str, bytes]]) -> None:
    peer = connected_peer()
    try:
        for k, (topic, payload) in enumerate(items):
            peer.sock.sendall(encode_publish(topic, payload, 1, k + 1))
        peer.pump(lambda: len(peer.received) == len(items))
        _, control = peer.read_packets(len(items))
        assert [(first, packet_id(body)) for first, body in control] == [
            (0x40, k + 1) for k in range(len(items))
        ]
    finally:
        peer.close()


def connack_properties() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "SessionExpiryInterval": st.integers(0, 0xFFFFFFFF),
            "ReceiveMaximum": st.integers(1, 0xFFFF),
            "MaximumQoS": st.sampled_from([0, 1]),
            "RetainAvailable": st.sampled_from([0, 1]),
            "MaximumPacketSize": st.integers(1, 268_435_455),
            "AssignedClientIdentifier": text(),
            "TopicAliasMaximum": st.integers(0, 0xFFFF),
            "ReasonString": text(max_size=200),
            "UserProperty": st.lists(st.tuples(text(), text()), min_size=1, max_size=3),
            "WildcardSubscriptionAvailable": st.sampled_from([0, 1]),
            "SubscriptionIdentifierAvailable": st.sampled_from([0, 1]),
            "SharedSubscriptionAvailable": st.sampled_from([0, 1]),
            "ServerKeepAlive": st.integers(0, 0xFFFF),
            "ResponseInformation": text(),
            "ServerReference": text(),
            "AuthenticationMethod": text(),
            "AuthenticationData": st.binary(max_size=100),
        },
    )


@given(connack_properties())
def test_we_read_properties_as_paho_packs_them(values: dict[str, Any]) -> None:
    props = Properties(PacketTypes.CONNACK)
    for name, value in values.items():
        setattr(props, name, value)
    packed = props.pack()
    found, end = read_properties(packed + b"rest", 0)
    assert end == len(packed)
    expected = {
        props.getIdentFromName(name): value
        for name, value in values.items()
        if name != "UserProperty"  # skipped: the hub reads none
    }
    assert found == expected


# --- what we write, paho reads ------------------------------------------------------------------


@PAHO
@given(
    st.lists(
        st.tuples(text(1, 40), st.binary(max_size=300), st.sampled_from([0, 1]), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_paho_reads_what_we_publish(items: list[tuple[str, bytes, int, bool]]) -> None:
    peer = connected_peer()
    try:
        for k, (topic, payload, qos, retain) in enumerate(items):
            peer.sock.sendall(encode_publish(topic, payload, qos, k + 1, retain=retain))
        peer.pump(lambda: len(peer.received) == len(items))
        assert peer.received == [
            (topic, payload, qos, k + 1 if qos else 0, retain)
            for k, (topic, payload, qos, retain) in enumerate(items)
        ]
    finally:
        peer.close()


@PAHO
@given(st.integers(1, 20))
def test_paho_reads_our_pubacks(n: int) -> None:
    peer = connected_peer()
    try:
        mids = [peer.client.publish(f"t/{k}", b"x", qos=1).mid for k in range(n)]
        peer.read_packets(n)
        peer.sock.sendall(encode_acks((mid, 1) for mid in mids))
        peer.pump(lambda: len(peer.published) == n)
        assert peer.published == mids
    finally:
        peer.close()


def test_qos_2_both_ways_with_our_pubrel_and_pubcomp() -> None:
    peer = connected_peer()
    try:
        # In: PUBLISH QoS 2 → paho's PUBREC → our PUBREL → paho delivers, PUBCOMP.
        peer.sock.sendall(encode_publish("t/in", b"two", 2, 9))
        _, control = peer.read_packets(1)
        assert [(first, packet_id(body)) for first, body in control] == [(0x50, 9)]
        peer.sock.sendall(encode_pubrel(9))
        peer.pump(lambda: len(peer.received) == 1)
        assert peer.received == [("t/in", b"two", 2, 9, False)]
        _, control = peer.read_packets(1)
        assert [(first, packet_id(body)) for first, body in control] == [(0x70, 9)]
        # Out: paho's PUBLISH QoS 2 → PUBREC → paho's PUBREL → our PUBCOMP → published.
        mid = peer.client.publish("t/out", b"2", qos=2).mid
        peer.read_packets(1)
        peer.sock.sendall(b"\x50\x02" + mid.to_bytes(2, "big"))
        _, control = peer.read_packets(1)
        assert [(first, packet_id(body)) for first, body in control] == [(0x62, mid)]
        peer.sock.sendall(encode_pubcomp(mid))
        peer.pump(lambda: peer.published == [mid])
    finally:
        peer.close()


# --- the frame splitter ---------------------------------------------------------------------------


control_packets = st.sampled_from(
    [
        CONNACK_OK,
        bytes.fromhex("90 04 0001 00 01"),  # SUBACK
        bytes.fromhex("d0 00"),  # PINGRESP
        encode_acks([(5, 1)]),
        encode_pubrel(7, 0x92),
        encode_disconnect(0x8B),
    ]
)
publishes = st.tuples(
    text(1, 40), st.binary(max_size=600), st.sampled_from([0, 1, 2]), st.integers(1, 0xFFFF)
).map(lambda p: encode_publish(p[0], p[1], p[2], p[3]))


@given(st.lists(st.one_of(publishes, control_packets), min_size=1, max_size=30), st.data())
def test_any_chunking_yields_the_same_packets(packets: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(packets)
    whole = StreamDecoder().feed(stream, NOW)
    assert len(whole[0]) + len(whole[1]) == len(packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    # A tiny buffer: packets larger than it make it grow, chunks larger than it are split.
    chunked = StreamDecoder(size=data.draw(st.integers(1, 64)))
    messages: list[Message] = []
    control: list[Packet] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        more, other = chunked.feed(stream[start:end], NOW)
        messages += more
        control += other
    assert (messages, control) == whole
    assert chunked.pending == 0
