"""Device events for browsers: live readings and online/offline status.

Both go to the device's owner and to administrators only. ``{"type": "live", ...}`` carries
the hub's LiveEvent fields as published (device_id, ts, energy_kwh, power_w, hour, hour_kwh,
quality, max_hourly_kwh, owner_id); ``{"type": "device_status", "device_id", "state", "ts"}``
mirrors the meter's status message.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from contract.codec import decode_status
from contract.reasons import DecodeError
from contract.topics import parse_meter_topic
from portal.realtime.core import Realtime

log = logging.getLogger("portal.realtime")
LIVE_PREFIX = "ems/v1/events/live/"
METERS_PREFIX = "ems/v1/meters/"


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def install_device_feeds(realtime: Realtime) -> None:
    async def on_live(topic: str, payload: bytes) -> None:
        device_id = _uuid(topic[len(LIVE_PREFIX) :])
        try:
            event: Any = json.loads(payload)
        except ValueError:
            event = None
        if device_id is None or not isinstance(event, dict):
            log.warning("ignoring a malformed live event on %s", topic[:120])
            return
        message = {**event, "type": "live", "device_id": str(device_id)}
        await realtime.send_to_user_and_admins(_uuid(event.get("owner_id")), message)

    async def on_status(topic: str, payload: bytes) -> None:
        parsed = parse_meter_topic(topic)
        if parsed is None or parsed[1] != "status":
            return
        device_id = parsed[0]
        try:
            state, ts = decode_status(payload)
        except DecodeError:
            return  # a cleared retained message or a broken meter: nothing to show
        message = {
            "type": "device_status",
            "device_id": str(device_id),
            "state": state,
            "ts": ts.isoformat() if ts else None,
        }
        owner = None
        if realtime.has_clients():  # no client socket here: no need to ask who owns it
            info = await realtime.devices.get(device_id)
            owner = info.owner_id if info else None
        await realtime.send_to_user_and_admins(owner, message)

    realtime.on_topic(LIVE_PREFIX, on_live)
    realtime.on_topic(METERS_PREFIX, on_status)
