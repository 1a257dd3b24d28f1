"""The portal's two broker connections come back by themselves after the broker restarts.

Both retry with the one back-off (portal/reconnect.py); this drives them against a real
Mosquitto that is stopped and started again on the same port, and checks that each is usable
afterwards: the admin connection changes a meter's credentials, the event subscription
receives an event published after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import Callable

from ems.broker import PORTAL_USER
from portal.broker_link import BrokerLink
from portal.realtime.link import EventLink
from portal.reconnect import RECONNECT
from portal.settings import PortalSettings
from tests.conftest import BrokerInfo

TOPIC = "ems/v1/events/devices"
# The broker is down for a few seconds; the back-off's ceiling plus start-up on a busy machine.
RECOVERY_S = RECONNECT.maximum_s + 20.0


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def test_both_connections_recover_from_a_broker_restart(broker: BrokerInfo) -> None:
    settings = PortalSettings(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        jwt_secret=secrets.token_urlsafe(32),
        mqtt_username=PORTAL_USER,
        mqtt_password=broker.portal_password,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
    )
    received: list[bytes] = []

    async def on_message(_topic: str, payload: bytes) -> None:
        received.append(payload)

    async def scenario() -> None:
        link, events = BrokerLink(settings), EventLink(settings, [TOPIC], on_message)
        tasks = [asyncio.create_task(link.run()), asyncio.create_task(events.run())]
        try:
            await until(events.subscribed.is_set, RECOVERY_S, "the first subscription")
            await link.create_meter(uuid.uuid4(), secrets.token_urlsafe(16))

            await asyncio.to_thread(broker.server.stop)
            await until(lambda: not events.subscribed.is_set(), RECOVERY_S, "the loss")
            await asyncio.to_thread(broker.server.start)

            await until(events.subscribed.is_set, RECOVERY_S, "the event resubscription")
            await link.create_meter(uuid.uuid4(), secrets.token_urlsafe(16))
            await events.publish(TOPIC, b"after the restart")
            await until(lambda: b"after the restart" in received, RECOVERY_S, "the event")
            assert events.fatal is None
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(scenario())
