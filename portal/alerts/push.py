"""Live alert delivery: ``ems/v1/events/alerts/{user_id}`` → the user's sockets and the
administrators' on this replica, as ``{"type": "alert", "event", "alert": AlertOut, "unread"}``.

The hub publishes after its commit, so the row is already there for anyone who reloads; an
acknowledgement is published the same way by the replica that committed it. The nil UUID (a
device with no owner) goes to administrators only. ``text`` is written in each reader's time
zone and ``unread`` is each reader's own count (the bell shows it as is).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from contract.codec import decode_alert_event, encode_alert_event
from contract.payloads import AlertEvent, AlertFacts
from contract.topics import ALERTS_PREFIX, alerts_topic
from portal.alerts.schemas import AlertOut
from portal.alerts.services import unread_count
from portal.alerts.texts import describe
from portal.auth.schemas import CurrentUser
from portal.errors import ServiceUnavailable
from portal.realtime import Connection, Realtime

log = logging.getLogger("portal.alerts")
NO_OWNER = uuid.UUID(int=0)


class AlertPush:
    def __init__(self, realtime: Realtime, engine: AsyncEngine) -> None:
        self._realtime = realtime
        self._engine = engine
        realtime.on_topic(ALERTS_PREFIX, self.on_event)

    async def on_event(self, topic: str, payload: bytes) -> None:
        try:
            user_id = uuid.UUID(topic[len(ALERTS_PREFIX) :])
            event = decode_alert_event(payload)
        except ValueError as exc:  # a bad topic id, or DecodeError (a ValueError)
            log.warning("ignoring a malformed alert event on %s: %s", topic[:120], exc)
            return
        recipients = self._realtime.recipients(None if user_id == NO_OWNER else user_id)
        if not recipients:
            return
        device = await self._realtime.devices.get(event.device_id)
        if device is None:
            return  # deleted since: its alerts went with it
        facts = msgspec.structs.asdict(event)
        del facts["event"]
        alert = AlertOut(**facts, device_name=device.name)
        await self._deliver(event.event, alert, recipients)

    async def acknowledged(self, alert: AlertOut) -> None:
        """Tell the user's other tabs and the administrators, on every replica: published
        on the alert's topic like the hub's events, delivered by ``on_event`` (this replica's
        too). If the broker is away, this replica's sockets still hear of it."""
        facts = {f: getattr(alert, f) for f in AlertFacts.__struct_fields__}
        payload = encode_alert_event(AlertEvent(**facts, event="acknowledged"))
        try:
            await self._realtime.publish(alerts_topic(alert.user_id or NO_OWNER), payload)
        except ServiceUnavailable as exc:
            log.warning("acknowledgement of %s pushed on this replica only: %s", alert.id, exc)
            try:
                await self._deliver("acknowledged", alert, self._realtime.recipients(alert.user_id))
            except Exception:  # best effort: the acknowledgement itself is committed
                log.exception("could not push the acknowledgement of %s", alert.id)

    async def _deliver(self, event: str, alert: AlertOut, recipients: set[Connection]) -> None:
        now = datetime.now(UTC)
        counts: dict[uuid.UUID | None, int] = {}
        async with self._engine.connect() as db:
            for connection in recipients:
                key = None if connection.is_admin else connection.user_id
                if key not in counts:
                    who: CurrentUser | uuid.UUID = connection.user if key is None else key
                    counts[key] = await unread_count(db, who)
        texts: dict[str, str] = {}
        for connection in recipients:
            tz = connection.time_zone
            if tz not in texts:
                texts[tz] = describe(alert, alert.device_name, tz, now)
            body = msgspec.structs.replace(alert, text=texts[tz])
            await connection.send(
                {
                    "type": "alert",
                    "event": event,
                    "alert": msgspec.to_builtins(body),
                    "unread": counts[None if connection.is_admin else connection.user_id],
                }
            )
