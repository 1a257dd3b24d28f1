"""The payload structs of contract v1: what each topic carries, as Python values.

The wire form of each is in ``contract.readings`` (readings) and ``contract.codec`` (the rest);
docs/mqtt.md documents their fields (tests/unit/test_docs_contract.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeAlias
from uuid import UUID

import msgspec

from contract.enums import (
    AlertEventKind,
    AlertKind,
    AlertStatus,
    DeviceAction,
    MeterKind,
    ReadingSource,
    Role,
    StatusState,
)

__all__ = [
    "AlertEvent",
    "AlertFacts",
    "AlertRef",
    "ChatEvent",
    "ChatMessage",
    "ConfigCmd",
    "DeviceEvent",
    "LiveEvent",
    "MessageEvent",
    "ReadEvent",
    "Reading",
    "ResendCmd",
    "Status",
    "TypingEvent",
]


class Reading(msgspec.Struct, frozen=True, gc=False):
    """One meter reading as received (``ems/v1/meters/{device_id}/readings``). A frozen
    struct, not a dataclass: the hub builds one per reading, and this is a quarter of a frozen
    dataclass's construction cost.

    ``source == "v1"``: ``energy_kwh`` is the cumulative register. ``source == "classic"``:
    ``energy_kwh`` is the classic ``measurement_value`` - cumulative for a ``cumulative`` meter,
    the interval's energy for an ``interval`` meter; the hub decides from the device setting.
    """

    device_id: UUID
    ts: datetime  # tz-aware UTC
    energy_kwh: float
    seq: int | None = None
    power_w: float | None = None
    source: ReadingSource = "v1"


@dataclass(frozen=True, slots=True)
class ResendCmd:
    """``ems/v1/meters/{device_id}/cmd``: resend stored readings from ``from_seq`` on."""

    from_seq: int


@dataclass(frozen=True, slots=True)
class ConfigCmd:
    """``ems/v1/meters/{device_id}/cmd``: set the reading interval, in seconds (>= 1)."""

    interval_s: int


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """``ems/v1/events/devices`` (portal -> hubs and portals): a device's settings after a
    change (``deleted``: the settings it had)."""

    action: DeviceAction
    device_id: UUID
    owner_id: UUID | None = None
    max_hourly_kwh: float | None = None
    meter_kind: MeterKind = "cumulative"
    rated_power_w: float | None = None
    interval_s: int | None = None


class LiveEvent(msgspec.Struct, frozen=True):
    """``ems/v1/events/live/{device_id}`` (hub -> portals): a device's newest reading and
    its current hour's total so far, at most a few per second."""

    device_id: str
    ts: datetime
    energy_kwh: float
    power_w: float | None
    hour: datetime
    hour_kwh: float | None
    quality: str | None
    max_hourly_kwh: float | None
    owner_id: str | None


class AlertFacts(msgspec.Struct, kw_only=True):
    """An alert as stored in the ``alerts`` table (the portal's API shape extends it)."""

    id: UUID
    device_id: UUID
    user_id: UUID | None
    kind: AlertKind
    hour: datetime | None
    limit_kwh: float | None
    value_kwh: float | None
    projected_kwh: float | None
    final_kwh: float | None
    late: bool
    status: AlertStatus
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: UUID | None = None


class AlertEvent(AlertFacts, kw_only=True):
    """``ems/v1/events/alerts/{user_id}``: what happened to the alert: ``raised``,
    ``updated``, ``retracted`` (the hub) or ``acknowledged`` (a portal replica, after its
    commit)."""

    event: AlertEventKind


class Status(NamedTuple):
    """Payload of ems/v1/meters/{device_id}/status (retained): the meter's birth or last will.
    ``ts`` is None when the meter sent none (a last will set long before it fires)."""

    state: StatusState
    ts: datetime | None


# --- chat: ems/v1/events/chat/{conversation_id} (portal -> portals) ---------------------------


class AlertRef(msgspec.Struct, kw_only=True):
    """What a chat message that refers to an alert shows about it."""

    id: UUID
    kind: str
    device_id: UUID
    device_name: str
    hour: datetime | None
    raised_at: datetime


class ChatMessage(msgspec.Struct, kw_only=True):
    """A chat message as the portal's API and its chat events carry it."""

    id: int
    conversation_id: UUID
    sender_id: UUID | None
    sender_role: Role
    sender_name: str | None
    body: str
    alert_id: UUID | None
    alert: AlertRef | None = None
    created_at: datetime
    read_at: datetime | None = None  # when the other side read it


class _ChatEvent(msgspec.Struct, kw_only=True, tag_field="kind"):
    conversation_id: UUID
    client_id: UUID


class MessageEvent(_ChatEvent, tag="message"):
    message: ChatMessage


class TypingEvent(_ChatEvent, tag="typing"):
    sender_id: UUID
    sender_role: Role
    typing: bool


class ReadEvent(_ChatEvent, tag="read"):
    reader_id: UUID
    reader_role: Role
    up_to: int
    read_at: datetime


ChatEvent: TypeAlias = MessageEvent | TypingEvent | ReadEvent
