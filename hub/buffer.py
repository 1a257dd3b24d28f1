"""The bounded buffer between the MQTT reader and the writer.

The reader hands over whole chunks (everything one ``recv`` parsed); the writer takes up to a
batch. When the buffer is full, ``put_many`` blocks the reader: it stops reading the socket,
and the broker — bounded by our Receive Maximum anyway — holds the rest. Nothing is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

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


AckMany = Callable[[list[tuple[int, int]]], None]


class Intake:
    """What the hub's writers share: the inbox, and acknowledgements in the order of arrival.

    Each writer takes a batch with a ticket and commits it on its own connection, so a later
    batch may commit first; its acknowledgements wait until every earlier batch's have gone
    out (MQTT wants PUBACKs in the order of the PUBLISHes, 3.1.1 and 5.0 section 4.6).
    """

    def __init__(self, capacity: int, ack_many: AckMany) -> None:
        self.inbox = Inbox(capacity)
        self._send = ack_many
        self._take_lock = threading.Lock()
        self._ack_lock = threading.Lock()
        self._next_ticket = 0
        self._next_out = 0
        self._done: dict[int, list[tuple[int, int]]] = {}
        self._in_hand: dict[int, int] = {}  # ticket -> messages, of the batches being written
        self._last_taken = 0.0

    def idle(self, quiet_s: float = 1.0) -> bool:
        """Nothing waiting, nothing being written, and no batch taken for ``quiet_s``."""
        if len(self.inbox) or self._in_hand:
            return False
        return time.monotonic() - self._last_taken >= quiet_s

    def take(self, limit: int, *, timeout: float, linger: float) -> tuple[int, list[Message]]:
        """A batch and its ticket (``release`` it exactly once), or ``(-1, [])``."""
        with self._take_lock:  # one writer fills its batch at a time: tickets follow arrival
            batch = self.inbox.take(limit, timeout=timeout, linger=linger)
            if not batch:
                return -1, []
            ticket = self._next_ticket
            self._next_ticket += 1
            self._in_hand[ticket] = len(batch)
            self._last_taken = time.monotonic()
            return ticket, batch

    def release(self, ticket: int, acks: list[tuple[int, int]]) -> None:
        """The batch is done (committed, or dead-lettered): send its acknowledgements, after
        those of every earlier batch."""
        with self._ack_lock:
            self._in_hand.pop(ticket, None)
            self._done[ticket] = acks
            while self._next_out in self._done:
                ready = self._done.pop(self._next_out)
                self._next_out += 1
                if ready:
                    self._send(ready)
