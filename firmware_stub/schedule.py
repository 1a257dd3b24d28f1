"""When readings are due: slots on the interval grid of the meter's clock.

Slots are multiples of the interval since the Unix epoch (at 600 s: :00, :10, :20...), so
readings of different meters line up and hours split cleanly. A poll that comes more than one
interval late takes the latest due slot and reports how many it skipped: a meter must not
invent readings for times it did not measure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReadingSchedule:
    def __init__(self, interval_s: int) -> None:
        self.interval = timedelta(seconds=interval_s)
        self.next_slot: datetime | None = None  # None: no more readings (stopped)

    def slot_after(self, ts: datetime) -> datetime:
        return ts + (self.interval - (ts - _EPOCH) % self.interval)

    def start(self, first: datetime) -> None:
        """The first reading was taken at ``first``; the next is on the grid after it."""
        self.next_slot = self.slot_after(first)

    def due(self, now: datetime) -> tuple[datetime, int] | None:
        """``(slot, skipped)`` when a reading is due at ``now``, and move on; else None."""
        if self.next_slot is None or now < self.next_slot:
            return None
        skipped = (now - self.next_slot) // self.interval
        slot = self.next_slot + skipped * self.interval
        self.next_slot = slot + self.interval
        return slot, skipped

    def change_interval(self, interval_s: int, now: datetime) -> None:
        self.interval = timedelta(seconds=interval_s)
        if self.next_slot is not None:
            self.next_slot = self.slot_after(now)

    def stop(self) -> None:
        self.next_slot = None
