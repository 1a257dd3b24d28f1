"""Device events for browsers: live readings and online/offline status.

Both go to the device's owner and to administrators only. ``{"type": "live", ...}`` carries
the fields of the hub's ``contract.payloads.LiveEvent`` (device_id, ts, energy_kwh, power_w,
hour, hour_kwh, quality, max_hourly_kwh, owner_id); an event that does not decode as one is
ignored with a warning. ``{"type": "device_status", "device_id", "state", "ts"}`` mirrors the
meter's status message.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from contract.codec import decode_live_event, decode_status
from contract.reasons import DecodeError
from contract.topics import LIVE_PREFIX, METERS_PREFIX, parse_live_topic, parse_meter_topic
from portal.realtime.core import Realtime

log = logging.getLogger("portal.realtime")


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def install_device_feeds(realtime: Realtime) -> None:
    async def on_live(topic: str, payload: bytes) -> None:
        device_id = parse_live_topic(topic)
        try:
            event = decode_live_event(payload)
        except DecodeError as exc:
            log.warning("ignoring a malformed live event on %s: %s", topic[:120], exc.message)
            return
        if device_id is None:
            log.warning("ignoring a live event on a malformed topic %s", topic[:120])
            return
        message = {**msgspec.to_builtins(event), "type": "live", "device_id": str(device_id)}
        await realtime.send_to_user_and_admins(_uuid(event.owner_id), message)

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
