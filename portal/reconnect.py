"""How the portal's broker connections retry: one back-off, and the refusals not worth retrying.

Both connections (broker_link's admin connection, realtime.link's event subscription) reconnect
on their own after the broker restarts; the jitter keeps the replicas of a scaled-out portal
from all knocking at the same instant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiomqtt

from common.backoff import Backoff, BackoffPolicy

# 0.2 s doubling to 10 s: a restarted broker is found again within a second, and a broker that
# stays down costs one attempt per 5-10 s per connection.
RECONNECT = BackoffPolicy(initial_s=0.2, maximum_s=10.0, factor=2.0, jitter=0.5)

_REFUSED_CODES = {4, 5, 134, 135}  # MQTT 3.1.1 / 5: bad user name or password, not authorised


def refused(exc: aiomqtt.MqttError) -> bool:
    """Did the broker refuse our credentials? They will not fix themselves: stop retrying."""
    rc = getattr(exc, "rc", None)
    return getattr(rc, "value", rc) in _REFUSED_CODES


# One session of a connection: connect, call ``up()`` once connected, hold it until it drops.
Session = Callable[[Callable[[], None]], Awaitable[None]]


async def keep_connected(
    session: Session,
    *,
    log: logging.Logger,
    lost: str,
    errors: tuple[type[BaseException], ...],
    on_refused: Callable[[aiomqtt.MqttError], None],
    after: Callable[[], None],
) -> None:
    """Run ``session`` again and again with the back-off between attempts, until the broker
    refuses the credentials (``on_refused``, then return). A lost connection is logged once
    per state change (``lost``, formatted with the error), not once per retry; ``after`` runs
    when each attempt ends, however it ends."""
    backoff, reported = Backoff(RECONNECT), False

    def up() -> None:
        nonlocal reported
        backoff.reset()
        reported = False

    while True:
        try:
            await session(up)
        except errors as exc:
            if isinstance(exc, aiomqtt.MqttError) and refused(exc):
                on_refused(exc)
                return
            log.log(logging.DEBUG if reported else logging.WARNING, lost, exc)
            reported = True
        except Exception:  # a supervisor must outlive surprises; say what happened
            log.exception("%s", lost % "unexpected error")
        finally:
            after()
        await asyncio.sleep(backoff.next_delay())
