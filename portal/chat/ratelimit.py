"""A sliding-window rate limit per user, in memory.

Per replica on purpose: the limit protects the portal and the people reading from a flood, so a
little slack behind a load balancer (N replicas allow at most N× the rate) is acceptable, and it
costs no database round trip per message. The clock is injectable for tests.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable

from portal.errors import TooManyRequests

_MAX_KEYS = 100_000


class SlidingWindowLimit:
    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        what: str = "requests",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._what = what
        self._clock = clock
        self._hits: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable) -> None:
        """Count one event for ``key``; TooManyRequests (429) if it is one too many."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= _MAX_KEYS:
                self._forget_idle(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            retry_after = max(1, math.ceil(hits[0] + self.window_s - now))
            raise TooManyRequests(
                f"too many {self._what}: at most {self.limit} every {self.window_s:g} s; "
                f"wait {retry_after} s and try again",
                retry_after_s=retry_after,
            )
        hits.append(now)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window_s]
        for key in idle:
            del self._hits[key]
        if len(self._hits) >= _MAX_KEYS:  # everyone is active: start over rather than grow
            self._hits.clear()
