"""An in-memory broker and client for tests: the ``MqttClient`` seam with a fake beside it.

Nothing happens until ``FakeBroker.deliver()``: connection answers, PUBACKs and messages are
queued and delivered in order, so a test decides exactly when the network "runs". The broker
keeps every publish it accepted (``published``), the retained messages, and it publishes a
client's last will when the connection is cut (``FakeClient.drop()`` or ``FakeBroker.kill()``).
While ``no_subscribers`` is set it answers as an MQTT 5 broker does when nobody is subscribed
(after a restart, before the hubs are back): PUBACK "no matching subscribers", message dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from firmware_stub.transport import PublishOutcome, Will


@dataclass(frozen=True, slots=True)
class Published:
    client_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool


class FakeBroker:
    def __init__(self, passwords: Mapping[str, str] | None = None) -> None:
        self.up = True
        self.hold_acks = False  # keep PUBACKs back until release_acks()
        self.no_subscribers = False  # answer UNROUTED and drop (retained ones are still kept)
        self.unrouted: list[Published] = []  # what it dropped for want of subscribers
        self.published: list[Published] = []
        self.retained: dict[str, bytes] = {}
        self._passwords = passwords
        self._queue: deque[Callable[[], None]] = deque()
        self._held: list[Callable[[], None]] = []
        self._clients: list[FakeClient] = []

    def client(self, client_id: str, password: str = "") -> FakeClient:
        client = FakeClient(self, client_id, password)
        self._clients.append(client)
        return client

    def deliver(self) -> int:
        """Deliver everything queued (and what that causes); return how many events ran."""
        count = 0
        while self._queue:
            self._queue.popleft()()
            count += 1
        return count

    def release_acks(self) -> None:
        self._queue.extend(self._held)
        self._held.clear()

    def stop(self) -> None:
        """The broker goes away: connections drop (no wills, as on a clean broker shutdown)
        and new attempts fail until ``start()``."""
        self.up = False
        self._held.clear()
        for client in self._clients:
            if client.connected:
                client.lose("broker stopped", will=False)

    def start(self) -> None:
        self.up = True

    def kill(self, client: FakeClient) -> None:
        """Cut ``client``'s connection as a network failure would: its last will is published."""
        if client.connected:
            client.lose("connection lost", will=True)

    def send(self, topic: str, payload: bytes) -> None:
        """Publish to every connected client subscribed to exactly ``topic``."""
        for client in self._clients:
            if client.connected and topic in client.subscriptions:
                self._queue.append(client.deliver_message(topic, payload))

    def accept(
        self, client_id: str, topic: str, payload: bytes, qos: int, retain: bool
    ) -> PublishOutcome:
        message = Published(client_id, topic, payload, qos, retain)
        if retain:
            self.retained[topic] = payload
        if self.no_subscribers:
            self.unrouted.append(message)
            return PublishOutcome.UNROUTED
        self.published.append(message)
        return PublishOutcome.ACCEPTED

    def queue(self, event: Callable[[], None], *, ack: bool = False) -> None:
        (self._held if ack and self.hold_acks else self._queue).append(event)

    def check(self, client_id: str, password: str) -> bool:
        return self._passwords is None or self._passwords.get(client_id) == password

    def topics(self, suffix: str) -> list[Published]:
        return [p for p in self.published if p.topic.endswith(suffix)]


class FakeClient:
    def __init__(self, broker: FakeBroker, client_id: str, password: str) -> None:
        self.on_connect: Callable[[], None] | None = None
        self.on_connect_failed: Callable[[str, bool], None] | None = None
        self.on_disconnect: Callable[[str], None] | None = None
        self.on_publish: Callable[[int, PublishOutcome], None] | None = None
        self.on_message: Callable[[str, bytes], None] | None = None
        self.connected = False
        self.subscriptions: set[str] = set()
        self.attempts = 0
        self._broker = broker
        self._client_id = client_id
        self._password = password
        self._session = 0  # events of an older session or attempt are void
        self._will: Will | None = None
        self._mid = 0

    def connect(self, will: Will) -> None:
        self.attempts += 1
        self._session += 1
        session = self._session

        def answer() -> None:
            if session != self._session:
                return
            if not self._broker.up:
                if self.on_connect_failed:
                    self.on_connect_failed("connection refused", False)
            elif not self._broker.check(self._client_id, self._password):
                if self.on_connect_failed:
                    self.on_connect_failed("bad user name or password", True)
            else:
                self.connected, self._will = True, will
                self.subscriptions.clear()
                if self.on_connect:
                    self.on_connect()

        self._broker.queue(answer)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        self._mid = self._mid % 65535 + 1
        mid, session = self._mid, self._session
        if not self.connected:
            return mid  # lost on a dead connection: no acknowledgement will come
        # Routed (or not) when it arrives, as a real broker does; the PUBACK says which.
        outcome = self._broker.accept(self._client_id, topic, payload, qos, retain)

        def ack() -> None:
            if session == self._session and self.connected and self.on_publish:
                self.on_publish(mid, outcome)

        if qos > 0:
            self._broker.queue(ack, ack=True)
        return mid

    def subscribe(self, topic: str, qos: int) -> None:
        if self.connected:
            self.subscriptions.add(topic)

    def disconnect(self) -> None:
        if self.connected:
            self.lose("client disconnected", will=False)
        else:
            self._session += 1  # abandon a pending attempt

    def drop(self) -> None:
        self._broker.kill(self)

    def is_connected(self) -> bool:
        return self.connected

    def lose(self, reason: str, *, will: bool) -> None:
        self.connected = False
        self._session += 1
        if will and self._will is not None:
            w = self._will
            self._broker.accept(self._client_id, w.topic, w.payload, w.qos, w.retain)

        def tell() -> None:
            if self.on_disconnect:
                self.on_disconnect(reason)

        self._broker.queue(tell)

    def deliver_message(self, topic: str, payload: bytes) -> Callable[[], None]:
        session = self._session

        def message() -> None:
            if session == self._session and self.on_message:
                self.on_message(topic, payload)

        return message
