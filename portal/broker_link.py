"""The portal's one long-lived broker connection: meter credentials and device events.

``run()`` is the lifespan's supervisor task: it connects, keeps the connection until it drops,
and reconnects with backoff and jitter. Refused credentials are reported and not retried (they
will not fix themselves). Requests borrow the current connection through ``admin()``, which
waits a little for a reconnect in progress before giving up with a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable

import aiomqtt

from contract.codec import encode_device_event
from contract.payloads import DeviceEvent
from contract.topics import DEVICE_EVENTS_TOPIC
from portal.broker_admin import BrokerAdmin, BrokerAdminError
from portal.errors import ServiceUnavailable
from portal.reconnect import keep_connected
from portal.settings import PortalSettings

log = logging.getLogger("portal.broker")

_BACKLOG = 1000


class BrokerLink:
    def __init__(self, settings: PortalSettings) -> None:
        self._settings = settings
        self._admin: BrokerAdmin | None = None
        self._connected = asyncio.Event()
        self._fatal: str | None = None
        # Events that could not be sent (broker down) go out first after the next reconnect.
        self._backlog: deque[DeviceEvent] = deque(maxlen=_BACKLOG)
        self._where = f"{settings.mqtt_host}:{settings.mqtt_port}"

    async def run(self) -> None:
        async def session(up: Callable[[], None]) -> None:
            admin = BrokerAdmin(
                self._settings.mqtt_host,
                self._settings.mqtt_port,
                self._settings.mqtt_username,
                self._settings.mqtt_password,
                timeout=self._settings.broker_timeout_s,
            )
            async with admin:
                self._admin = admin
                self._connected.set()
                log.info("connected to the broker at %s", self._where)
                up()
                await self._flush_backlog(admin)
                await admin.wait_closed()

        def on_refused(exc: aiomqtt.MqttError) -> None:
            self._fatal = f"the broker at {self._where} refused the portal's credentials"
            log.error("%s (%s) — fix PORTAL_MQTT_USERNAME/PASSWORD", self._fatal, exc)

        def after() -> None:
            self._admin = None
            self._connected.clear()

        await keep_connected(
            session,
            log=log,
            lost=f"broker at {self._where} unavailable (%s); retrying in the background",
            errors=(aiomqtt.MqttError, BrokerAdminError, OSError),
            on_refused=on_refused,
            after=after,
        )

    async def admin(self) -> BrokerAdmin:
        """The connected admin client, or ServiceUnavailable with what to do about it."""
        if self._fatal is None and not self._connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), self._settings.broker_wait_s)
        if self._admin is None:
            reason = self._fatal or f"the MQTT broker at {self._where} is unreachable"
            raise ServiceUnavailable(f"{reason} — meter credentials cannot be changed; try again")
        return self._admin

    async def create_meter(self, device_id: uuid.UUID, password: str) -> None:
        await self._call("create_meter", device_id, password)

    async def delete_meter(self, device_id: uuid.UUID) -> None:
        await self._call("delete_meter", device_id)

    async def _call(self, method: str, device_id: uuid.UUID, *args: str) -> None:
        admin = await self.admin()
        try:
            await getattr(admin, method)(device_id, *args)
        except (BrokerAdminError, aiomqtt.MqttError) as exc:
            log.warning("%s %s failed: %s", method, device_id, exc)
            raise ServiceUnavailable(
                f"the MQTT broker did not complete the credential change ({exc}); try again"
            ) from exc

    async def publish_device_event(self, event: DeviceEvent) -> None:
        """Best effort after commit: sent now if connected, else queued for the reconnect."""
        admin = self._admin
        if admin is None:
            self._backlog.append(event)
            log.warning(
                "device event %s %s queued: broker unavailable", event.action, event.device_id
            )
            return
        try:
            await admin.publish(DEVICE_EVENTS_TOPIC, encode_device_event(event), qos=1)
        except (BrokerAdminError, aiomqtt.MqttError) as exc:
            self._backlog.append(event)
            log.warning("device event %s %s queued: %s", event.action, event.device_id, exc)

    async def _flush_backlog(self, admin: BrokerAdmin) -> None:
        while self._backlog:
            event = self._backlog[0]
            try:
                payload = encode_device_event(event)
            except ValueError:
                log.exception("dropping unencodable device event for %s", event.device_id)
            else:
                await admin.publish(DEVICE_EVENTS_TOPIC, payload, qos=1)
            self._backlog.popleft()
