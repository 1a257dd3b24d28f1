"""One timer wheel for a whole fleet: each meter is polled when its next timer is due.

Ten thousand meters would be ten thousand sleeping tasks; one task and a table of ticks do the
same with less memory and fewer wake-ups. ``wake(item, at)`` asks for a poll at ``at`` (loop
time); only the earliest request per item counts, later ones are skipped when they come up.

Requests are rounded up to a tick (``1 / ticks_per_s`` seconds: 1 ms), and each tick holds the
list of items due then. Meters on the same interval grid all ask for the same slot, so a whole
fleet's readings of one slot are one tick: one heap entry (the heap orders ticks, not items)
and a list append per meter, where a heap per meter cost a push and a pop with log2(10,000)
tuple comparisons each. Rounding up never polls an item before its time; it is at most one
tick late.

``lag`` is how late the worst poll ran since ``take_lag()`` was last called: a meter's reading
due at t and polled at t + lag (measured from its tick). It grows when the process has more to
do than CPU to do it with (the loop is busy elsewhere), so ems-sim reports it as the cause of
missed readings.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Protocol


class Pollable(Protocol):
    def poll(self) -> float:
        """Do what is due; return the loop time of the next poll wanted."""
        ...


class Scheduler:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, batch: int = 256, ticks_per_s: int = 1000
    ) -> None:
        self._loop = loop
        self._batch = batch
        self._per_s = ticks_per_s
        self._ticks: list[int] = []  # heap of the ticks that have a list in _wheel
        self._wheel: dict[int, list[Pollable]] = {}
        self._due: dict[int, int] = {}  # id(item) -> the tick of its earliest request
        self._event = asyncio.Event()
        self._sleep_until = math.inf
        self.lag = 0.0

    def take_lag(self) -> float:
        """The worst lag since the last call (seconds), and start measuring again."""
        lag, self.lag = self.lag, 0.0
        return lag

    def wake(self, item: Pollable, at: float) -> None:
        if at == math.inf:
            return  # nothing wanted (a stopped meter)
        tick = math.ceil(at * self._per_s)
        key = id(item)
        due = self._due.get(key)
        if due is not None and tick >= due:
            return
        self._due[key] = tick
        items = self._wheel.get(tick)
        if items is None:
            self._wheel[tick] = [item]
            heapq.heappush(self._ticks, tick)
        else:
            items.append(item)
        if at < self._sleep_until:
            self._event.set()

    def pending(self) -> int:
        """How many items wait for a poll."""
        return len(self._due)

    def waiting_ticks(self) -> int:
        """How many distinct ticks hold requests (a fleet on one grid: one per slot)."""
        return len(self._ticks)

    async def run(self) -> None:
        ticks, wheel, due, loop = self._ticks, self._wheel, self._due, self._loop
        batch, per_s, pop, wake = self._batch, self._per_s, heapq.heappop, self.wake
        polled = 0
        while True:
            # Awake: wake() need not signal (-inf), whatever it adds is looked at below.
            self._sleep_until = -math.inf
            now = loop.time()
            while ticks and ticks[0] <= now * per_s:
                tick = pop(ticks)
                # Taken out of the wheel before the polls: a poll asking for this same tick
                # again starts a new list (and heap entry), which this loop then takes too.
                items = wheel.pop(tick)
                at = tick / per_s
                if now - at > self.lag:
                    self.lag = now - at
                for item in items:
                    key = id(item)
                    if due.get(key) != tick:
                        continue  # superseded by an earlier request that already ran
                    del due[key]
                    wake(item, item.poll())
                    polled += 1
                    if polled % batch == 0:
                        # Let acknowledgements and connections through during a big burst.
                        await asyncio.sleep(0)
                        now = loop.time()
                        if now - at > self.lag:
                            self.lag = now - at
            self._sleep_until = ticks[0] / per_s if ticks else math.inf
            self._event.clear()
            timer = None
            if ticks:
                timer = loop.call_at(self._sleep_until, self._event.set)
            await self._event.wait()
            if timer is not None:
                timer.cancel()
