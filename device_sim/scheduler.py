"""One timer heap for a whole fleet: each meter is polled when its next timer is due.

Ten thousand meters would be ten thousand sleeping tasks; a heap and one task do the same with
less memory and fewer wake-ups. ``wake(item, at)`` asks for a poll at ``at`` (loop time); only
the earliest request per item counts, later ones are skipped when they come up.

``lag`` is how late the worst poll ran since ``take_lag()`` was last called: a meter's reading
due at t and polled at t + lag. It grows when the process has more to do than CPU to do it
with (the loop is busy elsewhere), so ems-sim reports it as the cause of missed readings.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import Protocol


class Pollable(Protocol):
    def poll(self) -> float:
        """Do what is due; return the loop time of the next poll wanted."""
        ...


class Scheduler:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, batch: int = 256) -> None:
        self._loop = loop
        self._batch = batch
        self._heap: list[tuple[float, int, Pollable]] = []
        self._due: dict[int, float] = {}
        self._order = itertools.count()
        self._event = asyncio.Event()
        self._sleep_until = math.inf
        self.lag = 0.0

    def take_lag(self) -> float:
        """The worst lag since the last call (seconds), and start measuring again."""
        lag, self.lag = self.lag, 0.0
        return lag

    def wake(self, item: Pollable, at: float) -> None:
        key = id(item)
        if at >= self._due.get(key, math.inf):
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, next(self._order), item))
        if at < self._sleep_until:
            self._event.set()

    async def run(self) -> None:
        heap, due, loop, batch = self._heap, self._due, self._loop, self._batch
        pop, wake = heapq.heappop, self.wake
        while True:
            # Awake: wake() need not signal (-inf), whatever it adds is looked at below.
            self._sleep_until = -math.inf
            now = loop.time()
            polled = 0
            while heap and heap[0][0] <= now:
                at, _, item = pop(heap)
                key = id(item)
                if due.get(key) != at:
                    continue  # superseded by an earlier request that already ran
                del due[key]
                if now - at > self.lag:
                    self.lag = now - at
                wake(item, item.poll())
                polled += 1
                if polled % batch == 0:
                    # Let acknowledgements and connections through during a big burst.
                    await asyncio.sleep(0)
                    now = loop.time()
            self._sleep_until = heap[0][0] if heap else math.inf
            self._event.clear()
            timer = None
            if heap:
                timer = loop.call_at(self._sleep_until, self._event.set)
            await self._event.wait()
            if timer is not None:
                timer.cancel()
