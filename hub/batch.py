"""Turning a batch of MQTT messages into rows: decode, route bad input, de-duplicate. Pure."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeAlias
from uuid import UUID

from contract.payloads import Reading
from contract.readings import MAX_POWER_W, decode_readings_partial, encode_reading
from contract.reasons import DecodeError, truncate_payload
from contract.topics import DEVICE_EVENTS_TOPIC, parse_meter_topic
from hub.registry import DeviceInfo

Decoded: TypeAlias = tuple[list[Reading], list[DecodeError]]


class MessageKind(enum.Enum):
    """What a message is, decided once on arrival (``classify``) from its topic."""

    READINGS = "readings"  # a meter's readings, or any topic ``prepare`` dead-letters
    STATUS = "status"  # a meter's retained online/offline status
    DEVICE_EVENT = "device_event"  # the portal's device created/updated/deleted event


@dataclass(slots=True)
class Message:
    """One MQTT message as the hub received it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received: float  # time.monotonic() at arrival
    # Set on a retained message the broker replays because the hub (re)subscribed: old state,
    # not news (MQTT 5 §3.3.1.3; a live message is forwarded with the flag clear).
    retain: bool = False
    # Set by ``classify`` on arrival; None until then (the writer takes only classified ones).
    kind: MessageKind | None = None
    # A readings payload decoded on arrival by ``classify``: its readings and rejected
    # elements, or why it could not be decoded at all.
    decoded: Decoded | DecodeError | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    device_id: UUID | None
    reason: str
    detail: str
    payload: str


@dataclass(slots=True)
class PreparedBatch:
    readings: list[Reading] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    received: int = 0  # readings decoded, before de-duplication
    unknown: set[UUID] = field(default_factory=set)  # devices dead-lettered as unknown


def same_value(a: float, b: float) -> bool:
    # The same reading redelivered is the same JSON text, so the same float; the tolerance only
    # forgives a re-encoding of the value (e.g. by a gateway) in its last digit.
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def prepare(
    messages: Sequence[Message],
    device: Callable[[UUID], DeviceInfo | None],
    *,
    now: datetime,
    max_future: timedelta,
    max_lateness: timedelta,
    max_power_w: float = MAX_POWER_W,
) -> PreparedBatch:
    out = PreparedBatch()
    # Keyed by topic, not device id: one topic per device (the canonical form is enforced),
    # and a str caches its hash where a UUID computes it in Python on every lookup.
    seen: dict[tuple[str, datetime], float] = {}
    oldest = now - max_lateness
    for msg in messages:
        parsed = meter_topic(msg.topic)
        if parsed is None or parsed[1] != "readings":
            out.dead.append(
                DeadLetter(
                    msg.topic,
                    None,
                    "bad_topic",
                    "not ems/v1/meters/{uuid}/readings",
                    truncate_payload(msg.payload),
                )
            )
            continue
        device_id = parsed[0]
        try:
            decoded = msg.decoded
            if decoded is None:
                readings, rejected = decode_readings_partial(
                    device_id,
                    msg.payload,
                    now=now,
                    max_future=max_future,
                    max_power_w=max_power_w,
                )
            elif isinstance(decoded, DecodeError):
                raise decoded
            else:
                readings, rejected = decoded
        except DecodeError as exc:
            out.dead.append(
                DeadLetter(
                    msg.topic,
                    device_id,
                    exc.reason,
                    str(exc.message),
                    truncate_payload(msg.payload),
                )
            )
            continue
        if device(device_id) is None:
            out.unknown.add(device_id)
            out.dead.append(
                DeadLetter(
                    msg.topic,
                    device_id,
                    "unknown_device",
                    f"no device {device_id} is registered",
                    truncate_payload(msg.payload),
                )
            )
            continue
        for bad in rejected:  # an array's bad elements, each alone; the rest are stored
            out.dead.append(
                DeadLetter(msg.topic, device_id, bad.reason, bad.message, bad.element or "")
            )
        out.received += len(readings)
        for reading in readings:
            if reading.ts < oldest:
                out.dead.append(
                    DeadLetter(
                        msg.topic,
                        device_id,
                        "too_late",
                        f"older than the accepted lateness ({max_lateness})",
                        truncate_payload(encode_reading(reading)),
                    )
                )
                continue
            key = (msg.topic, reading.ts)
            previous = seen.get(key)
            if previous is None:
                seen[key] = reading.energy_kwh
                out.readings.append(reading)
            elif same_value(previous, reading.energy_kwh):
                out.duplicates += 1
            else:
                out.dead.append(conflict_letter(msg.topic, reading, previous))
    return out


def classify(
    messages: Sequence[Message],
    *,
    now: datetime,
    max_future: timedelta,
    max_power_w: float = MAX_POWER_W,
) -> None:
    """Set each message's ``kind`` and decode the readings payloads, as they arrive (the MQTT
    reader calls it, while the writer waits for the database with the previous batch): the
    writer routes by ``kind`` and ``prepare`` uses the decoded readings; the future-timestamp
    limit is taken from the time of arrival."""
    for msg in messages:
        if msg.topic == DEVICE_EVENTS_TOPIC:
            msg.kind = MessageKind.DEVICE_EVENT
            continue
        if msg.topic.endswith("/status"):
            # Including a malformed one (the writer acknowledges it and records nothing).
            msg.kind = MessageKind.STATUS
            continue
        # Anything else is readings: a topic that is not a meter's readings topic is
        # dead-lettered as bad_topic by ``prepare``.
        msg.kind = MessageKind.READINGS
        parsed = meter_topic(msg.topic)
        if parsed is None or parsed[1] != "readings":
            continue
        try:
            msg.decoded = decode_readings_partial(
                parsed[0], msg.payload, now=now, max_future=max_future, max_power_w=max_power_w
            )
        except DecodeError as exc:
            msg.decoded = exc.with_traceback(None)


@functools.lru_cache(maxsize=65536)
def meter_topic(topic: str) -> tuple[UUID, str] | None:
    # One parse per meter, not per message: a fleet's topics repeat all day.
    return parse_meter_topic(topic)


def conflict_letter(topic: str, reading: Reading, stored_kwh: float) -> DeadLetter:
    return DeadLetter(
        topic,
        reading.device_id,
        "conflict",
        f"reading at {reading.ts.isoformat()} already stored with {stored_kwh!r} kWh",
        truncate_payload(encode_reading(reading)),
    )
