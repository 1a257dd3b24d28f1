"""Stopping background tasks for good."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("portal")


async def cancel_and_wait(*tasks: asyncio.Task[Any], patience_s: float = 10.0) -> None:
    """Cancel ``tasks`` and wait until they have ended, cancelling again while one runs on.

    One ``cancel()`` is not always enough: on Python 3.11 ``asyncio.wait_for`` (which aiomqtt
    awaits while connecting and disconnecting) can lose a cancellation that arrives as its inner
    future completes (CPython gh-86296, fixed in 3.12); a reconnecting supervisor then goes round
    its loop again and shutdown waits forever. Errors the tasks end with are logged, not raised.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    pending = {t for t in tasks if not t.done()}
    while pending:
        remaining = deadline - loop.time()
        if remaining <= 0:
            names = ", ".join(sorted(t.get_name() for t in pending))
            log.error("tasks still running %.0f s after cancellation: %s", patience_s, names)
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.5, remaining))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s ended with an error", task.get_name(), exc_info=task.exception())
