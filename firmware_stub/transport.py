"""The MQTT client interface the meter needs, and nothing more.

A port to a small device implements this over its own MQTT library. Rules an implementation
keeps (the meter relies on them):

* Events are delivered later, from the client's own loop - never from inside ``publish()``,
  ``subscribe()`` or ``connect()`` - and on the thread that calls the meter.
* ``connect()`` starts one attempt; it ends in exactly one of ``on_connect`` or
  ``on_connect_failed``. A connection that was up ends in exactly one ``on_disconnect``.
* ``on_publish(mid, outcome)`` reports the broker's acknowledgement (PUBACK for QoS 1) of the
  publish that returned ``mid``, as a ``PublishOutcome``.
* ``disconnect()`` sends DISCONNECT (no last will) when connected, followed by
  ``on_disconnect``; during an attempt it abandons the attempt without further events.
* ``drop()`` cuts the connection without DISCONNECT, as a network failure would: the broker
  publishes the last will.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class PublishOutcome(Enum):
    """What a PUBACK says about a publish."""

    ACCEPTED = "accepted"
    """Routed to the subscribers (always so for MQTT 3.1.1, whose PUBACK has no reason)."""
    REFUSED = "refused"
    """An MQTT 5 error reason (not authorised, quota...): sending it again cannot help."""
    UNROUTED = "unrouted"
    """MQTT 5 reason 0x10 "No matching subscribers": the broker took the message and dropped
    it, because nobody was subscribed at that moment (e.g. the hubs had not subscribed again
    after a broker restart). Not a failure to MQTT, but not delivered either."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttClient(Protocol):
    on_connect: Callable[[], None] | None
    on_connect_failed: Callable[[str, bool], None] | None
    """``(reason, refused)``: ``refused`` is True when the broker rejected the credentials."""
    on_disconnect: Callable[[str], None] | None
    on_publish: Callable[[int, PublishOutcome], None] | None
    on_message: Callable[[str, bytes], None] | None

    def connect(self, will: Will) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int: ...

    def subscribe(self, topic: str, qos: int) -> None: ...

    def disconnect(self) -> None: ...

    def drop(self) -> None: ...

    def is_connected(self) -> bool: ...
