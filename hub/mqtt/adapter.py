"""What the hub needs from its broker connection, whichever broker is behind it.

hub.app, hub.health and the publishers depend on this, not on MqttConnection: a second
adapter (RabbitMQ's MQTT plugin, for the cluster issue) implements the same surface. The
contract the hub relies on: ``deliver_many`` (given at construction) is called on one thread
with what arrived; nothing is acknowledged until ``ack_many`` says so (after the commit),
so whatever was not acknowledged when the connection drops is delivered again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol


class BrokerAdapter(Protocol):
    # False while shutting down: what arrives is neither delivered nor acknowledged.
    intake_open: bool

    @property
    def connected(self) -> threading.Event:
        """Set while receiving (connected and subscribed)."""

    @property
    def fatal(self) -> str | None:
        """Why the adapter gave up for good (a refusal retrying cannot fix), else None."""

    @property
    def connects(self) -> int:
        """Successful connections so far (a reconnect counts again)."""

    @property
    def last_rx(self) -> float:
        """time.monotonic() when the broker last sent anything (hub.health)."""

    def start(self) -> None: ...

    def stop(self, *, disconnect: bool = True, timeout: float = 10.0) -> None:
        """``disconnect=False`` drops the connection as a crash would."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, *, retain: bool = False) -> None:
        """QoS 0 or 1; dropped (with a warning) while disconnected."""

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        """QoS 0, in one write."""

    def ack_many(self, acks: Iterable[tuple[int, int]]) -> None:
        """Acknowledge (packet id, QoS) pairs of delivered messages; dropped while down."""

    def ping(self, idle_s: float) -> None:
        """Prove the broker answers if nothing came from it for ``idle_s`` (refreshes
        ``last_rx``)."""
