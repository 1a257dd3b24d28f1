"""The MQTT client interface the meter needs, and nothing more.

A port to a small device implements this over its own MQTT library. Rules an implementation
keeps (the meter relies on them):

* Events are delivered later, from the client's own loop - never from inside ``publish()``,
  ``subscribe()`` or ``connect()`` - and on the thread that calls the meter.
* ``connect()`` starts one attempt; it ends in exactly one of ``on_connect`` or
  ``on_connect_failed``. A connection that was up ends in exactly one ``on_disconnect``.
* ``on_publish(mid, accepted)`` reports the broker's acknowledgement (PUBACK for QoS 1) of the
  publish that returned ``mid``; ``accepted`` is False when the broker refused it.
* ``disconnect()`` sends DISCONNECT (no last will) when connected, followed by
  ``on_disconnect``; during an attempt it abandons the attempt without further events.
* ``drop()`` cuts the connection without DISCONNECT, as a network failure would: the broker
  publishes the last will.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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
    on_publish: Callable[[int, bool], None] | None
    on_message: Callable[[str, bytes], None] | None

    def connect(self, will: Will) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int: ...

    def subscribe(self, topic: str, qos: int) -> None: ...

    def disconnect(self) -> None: ...

    def drop(self) -> None: ...

    def is_connected(self) -> bool: ...
