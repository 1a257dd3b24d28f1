"""Every MQTT topic of contract v1 (ARCHITECTURE.md §3, docs/mqtt.md): the subscription
filters, a builder per topic and the parsers. Ids in topics are canonical UUIDs (lower-case,
hyphenated), exactly as the builders and the broker ACLs write them."""

from __future__ import annotations

from typing import Final
from uuid import UUID

from contract.enums import MeterTopicKind

__all__ = [
    "ALERTS_PREFIX",
    "ALERTS_SUB",
    "CHAT_PREFIX",
    "CHAT_SUB",
    "DEVICE_EVENTS_TOPIC",
    "LIVE_PREFIX",
    "LIVE_SUB",
    "METERS_PREFIX",
    "READINGS_SUB",
    "STATUS_SUB",
    "alerts_topic",
    "canonical_uuid",
    "chat_topic",
    "cmd_topic",
    "id_segment",
    "live_topic",
    "parse_live_topic",
    "parse_meter_topic",
    "readings_shared_sub",
    "readings_topic",
    "status_topic",
]

METERS_PREFIX: Final = "ems/v1/meters/"
"""Meter topics: ``{METERS_PREFIX}{device_id}/{readings|status|cmd}``."""
_EVENTS: Final = "ems/v1/events/"
LIVE_PREFIX: Final = f"{_EVENTS}live/"
ALERTS_PREFIX: Final = f"{_EVENTS}alerts/"
CHAT_PREFIX: Final = f"{_EVENTS}chat/"

READINGS_SUB: Final = f"{METERS_PREFIX}+/readings"
STATUS_SUB: Final = f"{METERS_PREFIX}+/status"
DEVICE_EVENTS_TOPIC: Final = f"{_EVENTS}devices"
ALERTS_SUB: Final = f"{ALERTS_PREFIX}+"
LIVE_SUB: Final = f"{LIVE_PREFIX}+"
CHAT_SUB: Final = f"{CHAT_PREFIX}+"

_METER_KINDS: Final[dict[str, MeterTopicKind]] = {
    "readings": "readings",
    "status": "status",
    "cmd": "cmd",
}


def id_segment(value: UUID | str) -> str:
    """Canonical (lower-case, hyphenated) form; a string must parse as a UUID (ValueError)."""
    if isinstance(value, UUID):
        return str(value)
    return str(UUID(value))


def readings_shared_sub(group: str) -> str:
    """The hubs' subscription: queue semantics, each reading goes to one hub of ``group``."""
    return f"$share/{group}/{READINGS_SUB}"


def readings_topic(device_id: UUID | str) -> str:
    return f"{METERS_PREFIX}{id_segment(device_id)}/readings"


def status_topic(device_id: UUID | str) -> str:
    return f"{METERS_PREFIX}{id_segment(device_id)}/status"


def cmd_topic(device_id: UUID | str) -> str:
    return f"{METERS_PREFIX}{id_segment(device_id)}/cmd"


def alerts_topic(user_id: UUID | str) -> str:
    return f"{ALERTS_PREFIX}{id_segment(user_id)}"


def live_topic(device_id: UUID | str) -> str:
    return f"{LIVE_PREFIX}{id_segment(device_id)}"


def chat_topic(conversation_id: UUID | str | int) -> str:
    """Conversation ids may be UUIDs or non-negative integers (the design does not fix them)."""
    if type(conversation_id) is int:
        if conversation_id < 0:
            raise ValueError("conversation id must be non-negative")
        return f"{CHAT_PREFIX}{conversation_id}"
    if isinstance(conversation_id, UUID | str):
        return f"{CHAT_PREFIX}{id_segment(conversation_id)}"
    raise TypeError("conversation id must be a UUID, a UUID string or an int")


def canonical_uuid(segment: str) -> UUID | None:
    """The UUID a topic segment names, or ``None`` unless it is in canonical form."""
    if len(segment) != 36:
        return None
    try:
        value = UUID(segment)
    except ValueError:
        return None
    return value if str(value) == segment else None


def parse_meter_topic(topic: str) -> tuple[UUID, MeterTopicKind] | None:
    """``ems/v1/meters/{uuid}/{readings|status|cmd}`` -> ``(device_id, kind)``, else ``None``."""
    if not topic.startswith(METERS_PREFIX):
        return None
    parts = topic[len(METERS_PREFIX) :].split("/")
    if len(parts) != 2:
        return None
    kind = _METER_KINDS.get(parts[1])
    if kind is None:
        return None
    device_id = canonical_uuid(parts[0])
    if device_id is None:
        return None
    return device_id, kind


def parse_live_topic(topic: str) -> UUID | None:
    """``ems/v1/events/live/{device_id}`` -> the device id, else ``None``."""
    if not topic.startswith(LIVE_PREFIX):
        return None
    return canonical_uuid(topic[len(LIVE_PREFIX) :])
