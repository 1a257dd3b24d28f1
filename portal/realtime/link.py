"""The replica's MQTT event subscription: every portal replica gets every event.

``EventLink.run()`` is a supervisor task (started by the lifespan): connect, subscribe, read
until the connection drops, reconnect with backoff and jitter. The subscriptions are made
inside the connected context on every connect (aiomqtt's reconnection recipe): the session is
clean, so a reconnect without them would silently receive nothing. Refused credentials are
reported once and not retried. Events missed while disconnected are not replayed — pages load
state from the database and only use events to stay current.

Messages are handed to ``on_message`` one at a time, in arrival order (chat relies on the
order of a conversation's events), so handlers must be quick: look up, enqueue, return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiomqtt

from portal.errors import ServiceUnavailable
from portal.reconnect import keep_connected
from portal.settings import PortalSettings, events_username

log = logging.getLogger("portal.realtime")

OnMessage = Callable[[str, bytes], Awaitable[None]]


def _payload(value: object) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return b"" if value is None else str(value).encode()


class EventLink:
    def __init__(
        self, settings: PortalSettings, topics: Sequence[str], on_message: OnMessage
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._on_message = on_message
        self._client: aiomqtt.Client | None = None
        self.subscribed = asyncio.Event()
        self.fatal: str | None = None
        self._where = f"{settings.mqtt_host}:{settings.mqtt_port}"

    async def run(self) -> None:
        # An account of its own (the admin connection holds the portal's), pinned by the
        # broker to the client id of the same name.
        username = events_username(self._settings.mqtt_username)

        async def session(up: Callable[[], None]) -> None:
            client = aiomqtt.Client(
                hostname=self._settings.mqtt_host,
                port=self._settings.mqtt_port,
                username=username,
                password=self._settings.mqtt_password,
                identifier=username,
                keepalive=30,
            )
            async with client:
                await client.subscribe([(topic, 1) for topic in self._topics])
                self._client = client
                self.subscribed.set()
                log.info("subscribed to portal events at %s", self._where)
                up()
                async for message in client.messages:
                    # A retained message replayed on subscribe is old state, not an event.
                    if not message.retain:
                        await self._on_message(str(message.topic), _payload(message.payload))

        def on_refused(exc: aiomqtt.MqttError) -> None:
            self.fatal = (
                f"the broker at {self._where} refused the portal's credentials"
                f" (account {username!r}, client id {username!r})"
            )
            log.error("%s (%s): no live events", self.fatal, exc)

        def after() -> None:
            self._client = None
            self.subscribed.clear()

        await keep_connected(
            session,
            log=log,
            lost=f"event subscription at {self._where} lost (%s); reconnecting",
            errors=(aiomqtt.MqttError,),
            on_refused=on_refused,
            after=after,
        )

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish on the event connection; waits briefly for a reconnect, else 503."""
        if self._client is None and self.fatal is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subscribed.wait(), self._settings.broker_wait_s)
        client = self._client
        if client is None:
            reason = self.fatal or f"the MQTT broker at {self._where} is unreachable"
            raise ServiceUnavailable(f"{reason} — live updates cannot be sent; try again")
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            raise ServiceUnavailable(f"the MQTT broker did not take the event ({exc})") from exc
