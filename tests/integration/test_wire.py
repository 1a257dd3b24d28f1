"""hub.mqtt.connection against a real Mosquitto: delivery, redelivery, refusals, outages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from devkit.helpers import Subscriber, wait_for
from devkit.hubkit import Gateway, create_gateway, hub_settings
from ems.broker import HUB_USER
from hub.app import connection_settings
from hub.batch import Message
from hub.mqtt.connection import MqttConnection

READINGS_SHARED = "$share/hub/ems/v1/meters/+/readings"


def topic(meter: int) -> str:
    return f"ems/v1/meters/m{meter}/readings"


class Inbox:
    """Collects what a connection delivers; acknowledges each chunk at once unless told not to."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.client: MqttConnection | None = None
        self.chunks = 0
        self.largest = 0  # messages in the largest chunk
        self._messages: list[Message] = []
        self._lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> None:
        with self._lock:
            self._messages.extend(messages)
            self.chunks += 1
            self.largest = max(self.largest, len(messages))
        if self.auto_ack and self.client is not None:
            self.client.ack_many([(m.mid, m.qos) for m in messages])

    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def payloads(self) -> list[bytes]:
        return [m.payload for m in self.messages()]


@pytest.fixture
def clients() -> Iterator[list[MqttConnection]]:
    """Every client a test starts is stopped at its end, whatever happens."""
    started: list[MqttConnection] = []
    yield started
    for client in started:
        client.stop()


def start_client(
    clients: list[MqttConnection],
    broker: Any,
    inbox: Inbox,
    *,
    subscriptions: list[tuple[str, int]] | None = None,
    wait: bool = True,
    keepalive: int = 30,
    **settings: Any,
) -> MqttConnection:
    connection = replace(
        connection_settings(hub_settings("postgresql://unused", broker, **settings)),
        keepalive=keepalive,
    )
    client = MqttConnection(
        connection,
        inbox,
        subscriptions if subscriptions is not None else [(READINGS_SHARED, 1)],
    )
    inbox.client = client
    clients.append(client)
    client.start()
    if wait:
        assert client.connected.wait(10), client.fatal
    return client


@pytest.fixture
def gateway(broker: Any) -> Iterator[Gateway]:
    gw = Gateway(broker, *create_gateway(broker))
    yield gw
    gw.close()


def test_drains_twenty_thousand_queued_messages_in_order(
    broker: Any, gateway: Gateway, clients: list[MqttConnection]
) -> None:
    # The hub's hot path: a backlog queued in its persistent session while it was away.
    start_client(clients, broker, Inbox(), client_id="hub-drain").stop()
    sent = [(topic(i % 100), b'{"seq":%d}' % i) for i in range(20_000)]
    gateway.publish_many(sent)
    gateway.flush()
    inbox = Inbox()
    client = start_client(clients, broker, inbox, client_id="hub-drain")
    wait_for(lambda: len(inbox.messages()) >= len(sent), 60, "20,000 messages")
    got = inbox.messages()
    assert [(m.topic, m.payload) for m in got] == sent
    assert {m.qos for m in got} == {1}
    # Delivered a chunk per recv, not one by one. How much one recv finds depends on how the
    # broker's writes and our acknowledgements interleave (with the window wider than the
    # backlog, about 8 to 40 messages on average here): what cannot vary is that chunks hold
    # many messages.
    assert inbox.largest >= 100
    assert inbox.chunks < len(sent) / 4
    assert client.connects == 1


def test_unacknowledged_messages_come_back_after_a_crash(
    broker: Any, gateway: Gateway, clients: list[MqttConnection]
) -> None:
    first = Inbox(auto_ack=False)
    client = start_client(clients, broker, first, client_id="hub-crash")
    gateway.publish_many((topic(i % 7), b"%d" % i) for i in range(100))
    gateway.flush()
    got = wait_for(lambda: len(first.messages()) >= 100 and first.messages(), 10, "100 messages")
    client.ack_many([(m.mid, m.qos) for m in got[:40]])
    client.stop(disconnect=False)  # the socket closes without a DISCONNECT, as in a crash
    # Mosquitto reads one packet per client per loop: a takeover by the new connection before
    # it reached the end of the old socket would drop PUBACKs still unread there (they would be
    # redelivered too: at least once). Wait for it to see the close, to test the exact set.
    wait_for(
        lambda: "Client hub-crash closed its connection" in broker.server.log_path.read_text(),
        10,
        "the broker to see the connection close",
    )

    second = Inbox()
    start_client(clients, broker, second, client_id="hub-crash")
    # Redelivered messages come first; a new one published now marks the end of them.
    gateway.publish(topic(0), b"sentinel")
    gateway.flush()
    wait_for(lambda: b"sentinel" in second.payloads(), 10, "the sentinel")
    redelivered = second.payloads()[:-1]
    assert sorted(redelivered) == sorted(m.payload for m in got[40:])


def test_a_wrong_password_is_fatal_and_not_retried(
    broker: Any, clients: list[MqttConnection]
) -> None:
    client = start_client(clients, broker, Inbox(), wait=False, mqtt_password="wrong")
    fatal = wait_for(lambda: client.fatal, 10, "a fatal refusal")
    assert "Bad user name or password" in fatal or "Not authorized" in fatal
    client.stop()  # joins the reader thread, which gave up by itself
    assert client.attempts == 1
    assert not client.connected.is_set()


def test_a_subscription_the_acl_refuses_is_fatal(
    broker: Any, clients: list[MqttConnection]
) -> None:
    client = start_client(
        clients,
        broker,
        Inbox(),
        wait=False,
        subscriptions=[("ems/v1/meters/+/readings", 1)],
        mqtt_username=broker.portal_user,
        mqtt_password=broker.portal_password,
    )
    fatal = wait_for(lambda: client.fatal, 10, "a fatal refusal")
    assert "ems/v1/meters/+/readings" in fatal
    assert "Not authorized" in fatal
    client.stop()
    assert client.attempts == 1
    assert not client.connected.is_set()


def test_reconnects_by_itself_after_the_broker_restarts(
    broker: Any, clients: list[MqttConnection]
) -> None:
    inbox = Inbox()
    # The hub's own account: the restart pins every account to its client id (ems/broker.py).
    client = start_client(clients, broker, inbox, mqtt_username=HUB_USER, client_id=HUB_USER)
    credentials = create_gateway(broker)
    gw = Gateway(broker, *credentials)
    gw.publish_many((topic(1), b"before %d" % i) for i in range(10))
    gw.close()
    wait_for(lambda: len(inbox.messages()) == 10, 10, "the messages before the restart")

    broker.server.stop()
    wait_for(lambda: not client.connected.is_set(), 10, "the client to notice")
    broker.server.start()
    wait_for(lambda: client.connected.is_set(), 30, "the client to reconnect")
    assert client.connects == 2
    assert client.fatal is None

    gw = Gateway(broker, *credentials)
    gw.publish_many((topic(1), b"after %d" % i) for i in range(10))
    gw.close()
    wait_for(lambda: len(inbox.messages()) >= 20, 10, "the messages after the restart")
    assert sorted(inbox.payloads()[10:]) == sorted(b"after %d" % i for i in range(10))


def test_keepalive_keeps_an_idle_connection_up(
    broker: Any, gateway: Gateway, clients: list[MqttConnection]
) -> None:
    inbox = Inbox()
    client = start_client(clients, broker, inbox, keepalive=1)
    # Three answered pings take ≥ 2.25 s: longer than 2 × keepalive, and the broker drops a
    # client it has heard nothing from for 1.5 × keepalive.
    wait_for(lambda: client.pongs >= 3, 10, "three PINGRESPs")
    assert client.connected.is_set()
    assert (client.attempts, client.connects) == (1, 1)
    gateway.publish(topic(3), b"still here")
    gateway.flush()
    wait_for(lambda: inbox.payloads() == [b"still here"], 10, "a message on the idle connection")


def test_publishes_at_qos_0_and_1(broker: Any, clients: list[MqttConnection]) -> None:
    client = start_client(clients, broker, Inbox(), subscriptions=[("ems/v1/events/devices", 1)])
    watcher = Subscriber(
        broker.host, broker.port, broker.portal_user, broker.portal_password, "ems/v1/events/#"
    )
    try:
        client.publish("ems/v1/events/live/a", b"zero")
        client.publish("ems/v1/events/live/b", b"one", qos=1)
        wait_for(lambda: len(watcher.received()) == 2, 10, "both publishes")
        assert {(m.topic, m.payload) for m in watcher.received()} == {
            ("ems/v1/events/live/a", b"zero"),
            ("ems/v1/events/live/b", b"one"),
        }
        wait_for(lambda: not client._outgoing, 10, "the PUBACK of the QoS 1 publish")
    finally:
        watcher.close()


def test_closed_intake_neither_delivers_nor_acknowledges(
    broker: Any, gateway: Gateway, clients: list[MqttConnection]
) -> None:
    first = Inbox()
    client = start_client(clients, broker, first, client_id="hub-intake")
    client.intake_open = False
    gateway.publish_many((topic(2), b"%d" % i) for i in range(5))
    gateway.flush()
    client.stop()  # a normal DISCONNECT: the session and its unacknowledged messages stay
    assert first.messages() == []

    second = Inbox()
    start_client(clients, broker, second, client_id="hub-intake")
    wait_for(lambda: len(second.messages()) == 5, 10, "the held messages")
    assert sorted(second.payloads()) == [b"%d" % i for i in range(5)]
