"""The publishes in flight, and the acknowledged prefix they advance.

The meter keeps up to ``size`` readings publishes unacknowledged at once. A reading counts as
delivered only when the PUBACK of its publish *and* of every earlier one has arrived, so after
a lost connection "everything after the prefix" is exactly what must be sent again. PUBACKs
normally come in order (MQTT requires it of the broker for QoS 1); should one overtake another,
it waits here until the publishes before it are done.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Publish:
    last_seq: int
    count: int
    done: bool = False


class InFlightWindow:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the window holds at least one publish")
        self.size = size
        self._publishes: dict[int, _Publish] = {}  # insertion order = publish order

    def __len__(self) -> int:
        return len(self._publishes)

    def has_room(self) -> bool:
        return len(self._publishes) < self.size

    def sent(self, mid: int, last_seq: int, count: int) -> None:
        self._publishes[mid] = _Publish(last_seq, count)

    def count_of(self, mid: int) -> int | None:
        """How many readings the publish ``mid`` carries (None: not a readings publish)."""
        publish = self._publishes.get(mid)
        return None if publish is None else publish.count

    def acknowledged(self, mid: int) -> tuple[int, int] | None:
        """Record the PUBACK of ``mid``; return ``(last_seq, readings)`` of the prefix that is
        now complete (None if it did not move)."""
        publish = self._publishes.get(mid)
        if publish is None:
            return None
        publish.done = True
        through, readings = -1, 0
        while self._publishes:
            first_mid, first = next(iter(self._publishes.items()))
            if not first.done:
                break
            del self._publishes[first_mid]
            through, readings = first.last_seq, readings + first.count
        return (through, readings) if readings else None

    def clear(self) -> None:
        self._publishes.clear()
