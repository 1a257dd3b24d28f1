"""The wire form of every contract v1 payload but readings (``contract.readings``): meter
status, commands, device events, alert events and live events. Pure: no I/O.

Decoding raises only :class:`~contract.reasons.DecodeError`, with the contract's reason.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final

import msgspec

from contract.enums import (
    DEVICE_ACTIONS,
    METER_KINDS,
    STATUS_STATES,
    DeviceAction,
    MeterKind,
    StatusState,
)
from contract.fields import (
    MAX_SEQ,
    MISSING,
    finite,
    format_ts,
    integer,
    json_object,
    loads,
    parse_ts,
    required,
    uuid_field,
)
from contract.payloads import (
    AlertEvent,
    ChatEvent,
    ConfigCmd,
    DeviceEvent,
    LiveEvent,
    ResendCmd,
    Status,
)
from contract.reasons import Buffer, DecodeError
from contract.topics import chat_topic

__all__ = [
    "MAX_CHAT_EVENT_BYTES",
    "chat_event_topic",
    "decode_alert_event",
    "decode_chat_event",
    "decode_cmd",
    "decode_device_event",
    "decode_live_event",
    "decode_status",
    "encode_alert_event",
    "encode_chat_event",
    "encode_cmd_config",
    "encode_cmd_resend",
    "encode_device_event",
    "encode_live_event",
    "encode_status",
]

_encode: Final = msgspec.json.encode

# --------------------------------------------------------------------------------------------
# Status (retained; "offline" is also the last will)
# --------------------------------------------------------------------------------------------

_STATES: Final[dict[str, StatusState]] = {s: s for s in STATUS_STATES}


def encode_status(state: StatusState, ts: datetime | None) -> bytes:
    """``{"state": ..., "ts": ...}``; ``ts=None`` omits it (e.g. a last will set long before)."""
    if state not in _STATES:
        raise ValueError(f"state must be 'online' or 'offline', got {state!r}")
    obj: dict[str, str] = {"state": state}
    if ts is not None:
        obj["ts"] = format_ts(ts)
    return _encode(obj)


def decode_status(payload: Buffer) -> Status:
    """-> ``Status(state, ts)``; ``ts`` is ``None`` when absent or null.

    An empty payload (a cleared retained message) raises with reason ``empty_payload``.
    """
    obj = json_object(loads(payload))
    raw = obj.get("state", MISSING)
    if raw is MISSING:
        raise DecodeError("missing_field:state", "missing field: state")
    if type(raw) is not str:
        raise DecodeError("bad_type:state", "state must be a string")
    state = _STATES.get(raw)
    if state is None:
        raise DecodeError("bad_value:state", f"unknown state {raw!r}")
    raw_ts = obj.get("ts")
    return Status(state, None if raw_ts is None else parse_ts(raw_ts, "ts"))


# --------------------------------------------------------------------------------------------
# Commands (hub -> meter)
# --------------------------------------------------------------------------------------------


def encode_cmd_resend(from_seq: int) -> bytes:
    if type(from_seq) is not int or not 0 <= from_seq <= MAX_SEQ:
        raise ValueError(f"from_seq must be an int in [0, 2**63-1], got {from_seq!r}")
    return _encode({"cmd": "resend", "from_seq": from_seq})


def encode_cmd_config(interval_s: int) -> bytes:
    if type(interval_s) is not int or not 1 <= interval_s <= MAX_SEQ:
        raise ValueError(f"interval_s must be a positive int, got {interval_s!r}")
    return _encode({"cmd": "config", "interval_s": interval_s})


def decode_cmd(payload: Buffer) -> ResendCmd | ConfigCmd:
    obj = json_object(loads(payload))
    cmd = required(obj, "cmd")
    if type(cmd) is not str:
        raise DecodeError("bad_type:cmd", "cmd must be a string")
    if cmd == "resend":
        return ResendCmd(integer(required(obj, "from_seq"), "from_seq", 0))
    if cmd == "config":
        return ConfigCmd(integer(required(obj, "interval_s"), "interval_s", 1))
    raise DecodeError("bad_value:cmd", f"unknown cmd {cmd!r}")


# --------------------------------------------------------------------------------------------
# Device events (portal -> hubs, topic semantics)
# --------------------------------------------------------------------------------------------

_ACTIONS: Final[dict[str, DeviceAction]] = {a: a for a in DEVICE_ACTIONS}
_METER_KIND_VALUES: Final[dict[str, MeterKind]] = {k: k for k in METER_KINDS}


def _optional_non_negative(value: object, field: str) -> float | None:
    if value is None:
        return None
    number = finite(value, field)
    if number < 0:
        raise DecodeError(f"bad_value:{field}", f"{field} must be >= 0")
    return number + 0.0


def encode_device_event(event: DeviceEvent) -> bytes:
    """Every field is written; absent optional values as ``null``."""
    if event.action not in _ACTIONS:
        raise ValueError(f"unknown action {event.action!r}")
    if event.meter_kind not in _METER_KIND_VALUES:
        raise ValueError(f"unknown meter_kind {event.meter_kind!r}")
    for name, number in (
        ("max_hourly_kwh", event.max_hourly_kwh),
        ("rated_power_w", event.rated_power_w),
    ):
        if number is not None and (type(number) is bool or not math.isfinite(number) or number < 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {number!r}")
    if event.interval_s is not None and (
        type(event.interval_s) is not int or not 1 <= event.interval_s <= MAX_SEQ
    ):
        raise ValueError(f"interval_s must be a positive int, got {event.interval_s!r}")
    return _encode(
        {
            "action": event.action,
            "device_id": str(event.device_id),
            "owner_id": None if event.owner_id is None else str(event.owner_id),
            "max_hourly_kwh": event.max_hourly_kwh,
            "meter_kind": event.meter_kind,
            "rated_power_w": event.rated_power_w,
            "interval_s": event.interval_s,
        }
    )


def decode_device_event(payload: Buffer) -> DeviceEvent:
    """Required: ``action``, ``device_id``. Missing or null optional fields take the defaults
    (``meter_kind`` defaults to ``cumulative``). Unknown fields are ignored."""
    obj = json_object(loads(payload))
    raw = required(obj, "action")
    if type(raw) is not str:
        raise DecodeError("bad_type:action", "action must be a string")
    action = _ACTIONS.get(raw)
    if action is None:
        raise DecodeError("bad_value:action", f"unknown action {raw!r}")
    device_id = uuid_field(required(obj, "device_id"), "device_id")
    raw = obj.get("owner_id")
    owner_id = None if raw is None else uuid_field(raw, "owner_id")
    raw = obj.get("meter_kind")
    meter_kind: MeterKind = "cumulative"
    if raw is not None:
        if type(raw) is not str:
            raise DecodeError("bad_type:meter_kind", "meter_kind must be a string")
        kind = _METER_KIND_VALUES.get(raw)
        if kind is None:
            raise DecodeError("bad_value:meter_kind", f"unknown meter_kind {raw!r}")
        meter_kind = kind
    raw = obj.get("interval_s")
    return DeviceEvent(
        action=action,
        device_id=device_id,
        owner_id=owner_id,
        max_hourly_kwh=_optional_non_negative(obj.get("max_hourly_kwh"), "max_hourly_kwh"),
        meter_kind=meter_kind,
        rated_power_w=_optional_non_negative(obj.get("rated_power_w"), "rated_power_w"),
        interval_s=None if raw is None else integer(raw, "interval_s", 1),
    )


# --------------------------------------------------------------------------------------------
# Alert events: ems/v1/events/alerts/{user_id} (hub → portals; acknowledgements portal → portals)
# --------------------------------------------------------------------------------------------


encode_alert_event = msgspec.json.Encoder().encode
_decode_alert_event = msgspec.json.Decoder(AlertEvent).decode


def decode_alert_event(payload: Buffer) -> AlertEvent:
    try:
        return _decode_alert_event(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise DecodeError("bad_alert_event", str(exc)[:200]) from None


# --------------------------------------------------------------------------------------------
# Live events: ems/v1/events/live/{device_id} (hub -> portals)
# --------------------------------------------------------------------------------------------

encode_live_event = msgspec.json.Encoder().encode
_decode_live_event = msgspec.json.Decoder(LiveEvent).decode


def decode_live_event(payload: Buffer) -> LiveEvent:
    try:
        return _decode_live_event(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise DecodeError("bad_live_event", str(exc)[:200]) from None


# --------------------------------------------------------------------------------------------
# Chat events (portal -> portals)
# --------------------------------------------------------------------------------------------

MAX_CHAT_EVENT_BYTES: Final = 64 * 1024
_chat_decoder: Final = msgspec.json.Decoder(ChatEvent)


def chat_event_topic(event: ChatEvent) -> str:
    return chat_topic(event.conversation_id)


def encode_chat_event(event: ChatEvent) -> bytes:
    return _encode(event)


def decode_chat_event(topic: str, payload: Buffer) -> ChatEvent:
    """The event, or ValueError: malformed, too large, or not about the topic's conversation."""
    if len(payload) > MAX_CHAT_EVENT_BYTES:
        raise ValueError(
            f"chat event of {len(payload)} bytes is larger than {MAX_CHAT_EVENT_BYTES}"
        )
    try:
        event: ChatEvent = _chat_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"malformed chat event: {exc}") from None
    if topic != chat_event_topic(event):
        raise ValueError(f"chat event for {event.conversation_id} arrived on {topic}")
    return event
