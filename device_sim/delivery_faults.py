"""Faults on the wire: outage, duplicate bursts, out-of-order delivery, malformed payloads.

``FaultyClient`` sits between a meter and its real client (both ``MqttClient``) and, while a
fault's window is open (simulated time), changes what reaches the broker:

* ``outage@T,for=D``: at T the connection is cut without DISCONNECT (the broker publishes the
  last will) and every connection attempt fails until T+D; the meter buffers, backs off,
  reconnects after the window and flushes.
* ``duplicates@T,for=D,copies=N``: each readings message is published N more times.
* ``reorder@T,for=D``: readings messages are delivered in swapped pairs (2, 1, 4, 3...): the
  first of a pair is held back until the second has gone. A held message still unsent when
  the window closes goes then; one held when the connection drops is lost to the wire and the
  meter resends it (it was never acknowledged).
* ``malformed@T,for=D``: after each readings message, one malformed payload from
  ``malformed_payloads`` (in its order, then from the top again).

Injected copies and malformed payloads are not the meter's: their PUBACKs are not passed on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from device_sim.scenario import Fault
from firmware_stub.clock import Clock
from firmware_stub.transport import MqttClient, PublishOutcome, Will

WIRE_KINDS = frozenset({"outage", "duplicates", "reorder", "malformed"})


def malformed_payloads(now: datetime, device_id: UUID) -> list[tuple[str, bytes]]:
    """Each payload with the dead-letter reason the hub's decoder gives it."""
    ts = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    other = UUID(int=device_id.int ^ 1)

    def obj(**fields: object) -> bytes:
        return json.dumps(fields).encode()

    return [
        ("invalid_json", b'{"ts": "' + ts.encode() + b'", "energy_kwh": 1.0'),
        ("missing_field:ts", obj(energy_kwh=12.5)),
        ("bad_timestamp", obj(ts="yesterday", energy_kwh=12.5)),
        ("negative_energy", obj(ts=ts, energy_kwh=-5.0)),
        ("bad_type:energy_kwh", obj(ts=ts, energy_kwh="12.5")),
        ("empty_batch", b"[]"),
        ("device_mismatch", obj(ts=ts, energy_kwh=1.0, device_id=str(other))),
        ("not_object", b'"hello"'),
    ]


@dataclass(slots=True)
class Injected:
    outages: int = 0
    duplicates: int = 0
    reordered: int = 0
    malformed: int = 0


class FaultyClient:
    def __init__(
        self, inner: MqttClient, clock: Clock, faults: Sequence[Fault], device_id: UUID
    ) -> None:
        self.on_connect: Callable[[], None] | None = None
        self.on_connect_failed: Callable[[str, bool], None] | None = None
        self.on_disconnect: Callable[[str], None] | None = None
        self.on_publish: Callable[[int, PublishOutcome], None] | None = None
        self.on_message: Callable[[str, bytes], None] | None = None
        self.on_timer: Callable[[float], None] | None = None
        self.injected = Injected()
        self._inner = inner
        self._clock = clock
        self._faults = [f for f in faults if f.kind in WIRE_KINDS]
        self._device_id = device_id
        self._cut: set[int] = set()  # outages whose cut has happened
        self._refused = False  # a connect() refused by an outage, to report from poll()
        self._held: tuple[str, bytes, int] | None = None
        self._held_mid = 0
        self._mids: dict[int, int] = {}  # inner mid -> the mid the meter was given
        self._swallow: set[int] = set()
        self._bad = 0
        self._smothered = False  # a connection that came up during an outage, being cut
        inner.on_connect = self._connected
        inner.on_connect_failed = self._connect_failed
        inner.on_disconnect = self._disconnected
        inner.on_publish = self._published
        inner.on_message = lambda t, p: self.on_message(t, p) if self.on_message else None

    def _open(self, kind: str, now: datetime) -> Fault | None:
        return next((f for f in self._faults if f.kind == kind and f.active(now)), None)

    # ---- MqttClient ----------------------------------------------------------------------

    def connect(self, will: Will) -> None:
        if self._open("outage", self._clock.now()):
            self._refused = True  # events are never delivered from inside connect()
            if self.on_timer:
                self.on_timer(self._clock.monotonic())
            return
        self._inner.connect(will)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        if not topic.endswith("/readings"):
            return self._inner.publish(topic, payload, qos, retain)
        now = self._clock.now()
        if self._open("reorder", now):
            if self._held is None:
                self._held_mid -= 1  # negative: never clashes with a real message id
                self._held = (topic, payload, qos)
                return self._held_mid
            mid = self._inner.publish(topic, payload, qos, retain)
            self._release()
            self.injected.reordered += 1
        else:
            self._release()
            mid = self._inner.publish(topic, payload, qos, retain)
        if fault := self._open("duplicates", now):
            for _ in range(fault.copies):
                self._swallow.add(self._inner.publish(topic, payload, qos, retain))
            self.injected.duplicates += fault.copies
        if self._open("malformed", now):
            bad = malformed_payloads(now, self._device_id)
            _reason, body = bad[self._bad % len(bad)]
            self._bad += 1
            self._swallow.add(self._inner.publish(topic, body, 1, False))
            self.injected.malformed += 1
        return mid

    def subscribe(self, topic: str, qos: int) -> None:
        self._inner.subscribe(topic, qos)

    def disconnect(self) -> None:
        self._release()
        self._inner.disconnect()

    def drop(self) -> None:
        self._inner.drop()

    def is_connected(self) -> bool:
        return self._inner.is_connected()

    # ---- time ----------------------------------------------------------------------------

    def poll(self) -> float:
        """Open and close fault windows; return the monotonic time of the next change."""
        now, mono = self._clock.now(), self._clock.monotonic()
        if self._refused:
            self._refused = False
            if self.on_connect_failed:
                self.on_connect_failed("network unreachable (simulated outage)", False)
        for i, fault in enumerate(self._faults):
            if fault.kind == "outage" and fault.active(now) and i not in self._cut:
                self._cut.add(i)
                self.injected.outages += 1
                self._inner.drop()  # a no-op when not connected
        if self._held is not None and not self._open("reorder", now):
            self._release()
        later = [t for f in self._faults for t in (f.at, f.end) if t > now]
        if not later:
            return mono + 3600.0
        return mono + (min(later) - now).total_seconds() / self._clock.speed

    # ---- events from the real client -----------------------------------------------------

    def _release(self) -> None:
        if self._held is not None:
            (topic, payload, qos), self._held = self._held, None
            self._mids[self._inner.publish(topic, payload, qos, False)] = self._held_mid

    def _published(self, mid: int, outcome: PublishOutcome) -> None:
        if mid in self._swallow:
            self._swallow.discard(mid)
        elif self.on_publish:
            self.on_publish(self._mids.pop(mid, mid), outcome)

    def _connected(self) -> None:
        if self._open("outage", self._clock.now()):
            # The attempt started before the outage: to the meter it fails, as it would have.
            self._smothered = True
            self._inner.drop()
        elif self.on_connect:
            self.on_connect()

    def _connect_failed(self, reason: str, refused: bool) -> None:
        if self.on_connect_failed:
            self.on_connect_failed(reason, refused)

    def _disconnected(self, reason: str) -> None:
        if self._smothered:
            self._smothered = False
            self._connect_failed("network unreachable (simulated outage)", False)
            return
        self._held = None
        self._mids.clear()
        self._swallow.clear()
        if self.on_disconnect:
            self.on_disconnect(reason)
