"""The bounded buffer between the MQTT reader and the writer.

The reader hands over whole chunks (everything one ``recv`` parsed); the writer takes up to a
batch. When the buffer is full, ``put_many`` blocks the reader: it stops reading the socket,
and the broker — bounded by our Receive Maximum anyway — holds the rest. Nothing is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from hub.batch import Message


class Inbox:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[Message] = deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, messages: Sequence[Message]) -> None:
        with self._cond:
            while len(self._items) >= self.capacity:
                self._cond.wait(1.0)
            self._items.extend(messages)
            self._cond.notify_all()

    def take(self, limit: int, *, timeout: float, linger: float) -> list[Message]:
        """Up to ``limit`` messages: wait ``timeout`` for the first, then at most ``linger``
        more for the batch to fill (a short wait buys a much larger transaction)."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: bool(self._items), timeout):
                return []
            deadline = time.monotonic() + linger
            while len(self._items) < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    break
            n = min(limit, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._cond.notify_all()
            return batch
