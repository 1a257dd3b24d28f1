"""One open WebSocket: who is on it, and a bounded queue that decouples senders from it.

Senders never wait for a browser: ``send`` only enqueues. A socket whose queue is full (a
browser that stopped reading, a dead network path not yet noticed) is closed rather than
allowed to hold memory or delay anyone else; its page reconnects and reloads what it shows
from the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from litestar import WebSocket

from portal.auth.schemas import CurrentUser

log = logging.getLogger("portal.realtime")

QUEUE_SIZE = 256
CLOSE_OVERFLOW = 1013  # "try again later": the page reconnects


class Connection:
    """A signed-in user's socket. Handlers get it; use ``user_id``, ``role`` and ``send``."""

    def __init__(self, socket: WebSocket[Any, Any, Any], user: CurrentUser, token: str) -> None:
        self.socket = socket
        self.user = user
        self.token = token  # re-checked on keepalive: a logout or deleted user ends the socket
        self.id = uuid.uuid4().hex[:12]
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        self.closed = False
        self.close_code = 1000

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin

    @property
    def time_zone(self) -> str:
        return self.user.time_zone

    async def send(self, message: dict[str, Any]) -> None:
        """Queue one JSON message for this socket; never blocks (a full queue closes it)."""
        self.send_text(json.dumps(message, default=str, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        """Queue an already-encoded JSON message (fan-out encodes once for many sockets)."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("socket %s of %s is not reading; closing it", self.id, self.user_id)
            self.close(CLOSE_OVERFLOW)

    def close(self, code: int = 1000) -> None:
        """Ask the writer to close the socket once (idempotent)."""
        if self.closed:
            return
        self.closed, self.close_code = True, code
        # Wake the writer even when the queue is full: drop what it has not sent yet.
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def next_text(self) -> str | None:
        """The next queued message; ``None`` once the socket is to be closed."""
        return await self._queue.get()
