"""MQTT wire contract v1: topics and payload codec (ARCHITECTURE.md §3).

Shared by the hub, the portal and the simulator. Pure: no I/O, nothing done at import time
beyond compiling one regular expression, and the only dependency is ``msgspec``.

Decoding never raises anything but :class:`DecodeError` for a bad payload; its ``reason`` is a
short machine-readable string (stored in the dead-letter table and used as a metrics label):

``empty_payload``, ``invalid_json``, ``not_object``, ``empty_batch``, ``batch_too_large``,
``missing_field:<name>``, ``bad_type:<name>``, ``bad_value:<name>``, ``device_mismatch``,
``bad_timestamp``, ``future_timestamp``, ``negative_energy``, ``non_finite``,
``out_of_range:<name>`` (a finite number no meter can report: a register above
``MAX_REGISTER_KWH``, a ``power_w`` beyond the power ceiling).

A readings array is accepted **element by element**: a bad element is rejected on its own
(``decode_readings_partial`` returns it as a ``DecodeError`` with its ``index`` and the element
itself as ``element``) and its neighbours are kept. A store-and-forward flush of 1,000 readings
with one corrupt entry must not lose the other 999: the meter deletes what the broker
acknowledged, so nothing would ever bring them back. (A redelivered flush is harmless: the
stored readings are absorbed as duplicates by their key.) A payload that is not JSON, not an
object or array, empty, or longer than ``MAX_BATCH`` is rejected whole.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias
from uuid import UUID

import msgspec

__all__ = [
    "ALERTS_SUB",
    "CHAT_SUB",
    "DEAD_LETTER_REASONS",
    "DEVICE_EVENTS_TOPIC",
    "LIVE_SUB",
    "MAX_BATCH",
    "MAX_POWER_W",
    "MAX_REGISTER_KWH",
    "READINGS_SHARED_SUB",
    "READINGS_SUB",
    "STATUS_SUB",
    "AlertEvent",
    "AlertFacts",
    "Buffer",
    "ConfigCmd",
    "DecodeError",
    "DeviceAction",
    "DeviceEvent",
    "MeterKind",
    "MeterTopicKind",
    "Reading",
    "ReadingSource",
    "ResendCmd",
    "StatusState",
    "alerts_topic",
    "chat_topic",
    "cmd_topic",
    "decode_alert_event",
    "decode_cmd",
    "decode_device_event",
    "decode_readings",
    "decode_readings_partial",
    "decode_status",
    "encode_alert_event",
    "encode_classic",
    "encode_cmd_config",
    "encode_cmd_resend",
    "encode_device_event",
    "encode_reading",
    "encode_readings",
    "encode_status",
    "live_topic",
    "parse_meter_topic",
    "readings_topic",
    "reason_family",
    "status_topic",
    "truncate_payload",
]

Buffer: TypeAlias = bytes | bytearray | memoryview
MeterTopicKind: TypeAlias = Literal["readings", "status", "cmd"]
ReadingSource: TypeAlias = Literal["v1", "classic"]
StatusState: TypeAlias = Literal["online", "offline"]
MeterKind: TypeAlias = Literal["cumulative", "interval"]
DeviceAction: TypeAlias = Literal["created", "updated", "deleted", "owner_changed"]

# --------------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------------

_METERS: Final = "ems/v1/meters/"
_EVENTS: Final = "ems/v1/events/"

READINGS_SHARED_SUB: Final = "$share/hub/ems/v1/meters/+/readings"
"""Hub subscription: queue semantics, each reading goes to one hub replica."""
READINGS_SUB: Final = "ems/v1/meters/+/readings"
STATUS_SUB: Final = "ems/v1/meters/+/status"
DEVICE_EVENTS_TOPIC: Final = "ems/v1/events/devices"
ALERTS_SUB: Final = "ems/v1/events/alerts/+"
LIVE_SUB: Final = "ems/v1/events/live/+"
CHAT_SUB: Final = "ems/v1/events/chat/+"

MAX_BATCH: Final = 1000
"""Largest readings array the contract allows (store-and-forward flush)."""

MAX_REGISTER_KWH: Final = 1e9
"""Largest energy register (or classic ``measurement_value``) accepted, kWh. A meter's
register shows at most 9-10 digits, decimals included, so no real one reaches 1e9 kWh (ten
integer digits); and values this size add up over millions of rows without coming anywhere
near float overflow (a stored 1e308 made PostgreSQL's sums fail)."""

MAX_POWER_W: Final = 1e8
"""Default ceiling on the power of one meter point, W (100 MW): above the largest single
connection a meter on this platform measures (a big industrial high-voltage site draws tens of
MW). It bounds ``power_w`` and, in the hub's rollup, the power an energy increase implies when
a device has no rated power (setting ``HUB_MAX_POWER_W``)."""

DEAD_LETTER_REASONS: Final = frozenset(
    {
        # the payload codec (this module)
        "empty_payload",
        "invalid_json",
        "not_object",
        "empty_batch",
        "batch_too_large",
        "missing_field",
        "bad_type",
        "bad_value",
        "bad_timestamp",
        "future_timestamp",
        "negative_energy",
        "non_finite",
        "out_of_range",
        "device_mismatch",
        # the hub's batch preparation and storage
        "bad_topic",
        "unknown_device",
        "too_late",
        "conflict",
        # the hub's rollup
        "implausible",
    }
)
"""Every reason a dead letter can carry, as a family: the part before ``:<field>`` in
``missing_field:ts``. The family is the ``reason`` label of ``hub_messages_rejected``;
``docs/mqtt.md`` lists the same set (``tests/unit/test_docs_contract.py`` checks both)."""


def reason_family(reason: str) -> str:
    """``missing_field:ts`` -> ``missing_field``; a reason without a field is its own family."""
    return reason.partition(":")[0]


_METER_KINDS: Final[dict[str, MeterTopicKind]] = {
    "readings": "readings",
    "status": "status",
    "cmd": "cmd",
}


def _uuid_segment(value: UUID | str) -> str:
    """Canonical (lower-case, hyphenated) form; a string must parse as a UUID (ValueError)."""
    if isinstance(value, UUID):
        return str(value)
    return str(UUID(value))


def readings_topic(device_id: UUID | str) -> str:
    return f"{_METERS}{_uuid_segment(device_id)}/readings"


def status_topic(device_id: UUID | str) -> str:
    return f"{_METERS}{_uuid_segment(device_id)}/status"


def cmd_topic(device_id: UUID | str) -> str:
    return f"{_METERS}{_uuid_segment(device_id)}/cmd"


def alerts_topic(user_id: UUID | str) -> str:
    return f"{_EVENTS}alerts/{_uuid_segment(user_id)}"


def live_topic(device_id: UUID | str) -> str:
    return f"{_EVENTS}live/{_uuid_segment(device_id)}"


def chat_topic(conversation_id: UUID | str | int) -> str:
    """Conversation ids may be UUIDs or non-negative integers (the design does not fix them)."""
    if type(conversation_id) is int:
        if conversation_id < 0:
            raise ValueError("conversation id must be non-negative")
        return f"{_EVENTS}chat/{conversation_id}"
    if isinstance(conversation_id, UUID | str):
        return f"{_EVENTS}chat/{_uuid_segment(conversation_id)}"
    raise TypeError("conversation id must be a UUID, a UUID string or an int")


def _canonical_uuid(segment: str) -> UUID | None:
    if len(segment) != 36:
        return None
    try:
        value = UUID(segment)
    except ValueError:
        return None
    return value if str(value) == segment else None


def parse_meter_topic(topic: str) -> tuple[UUID, MeterTopicKind] | None:
    """``ems/v1/meters/{uuid}/{readings|status|cmd}`` -> ``(device_id, kind)``, else ``None``.

    The id must be in canonical form (lower-case, hyphenated), exactly as the topic builders
    and the broker ACLs write it.
    """
    if not topic.startswith(_METERS):
        return None
    parts = topic[len(_METERS) :].split("/")
    if len(parts) != 2:
        return None
    kind = _METER_KINDS.get(parts[1])
    if kind is None:
        return None
    device_id = _canonical_uuid(parts[0])
    if device_id is None:
        return None
    return device_id, kind


# --------------------------------------------------------------------------------------------
# Errors and value parsing
# --------------------------------------------------------------------------------------------


class DecodeError(ValueError):
    """A payload that violates the contract. ``reason`` is short and machine-readable."""

    reason: str
    message: str
    index: int | None
    element: str | None  # an array element rejected alone: that element as JSON (truncated)

    def __init__(
        self,
        reason: str,
        message: str = "",
        index: int | None = None,
        element: str | None = None,
    ) -> None:
        self.reason = reason
        self.message = message or reason
        self.index = index
        self.element = element
        super().__init__(self.message)

    def __reduce__(
        self,
    ) -> tuple[type[DecodeError], tuple[str, str, int | None, str | None]]:
        return (type(self), (self.reason, self.message, self.index, self.element))


_MISSING: Final = object()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_MAX_SEQ: Final = 2**63 - 1  # stored as bigint
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_decoder: Final = msgspec.json.Decoder()
_encode: Final = msgspec.json.encode


def _loads(payload: Buffer) -> Any:
    if len(payload) == 0:
        raise DecodeError("empty_payload", "empty payload")
    try:
        return _decoder.decode(payload)
    except msgspec.ValidationError as exc:  # only "Number out of range" for untyped decoding
        raise DecodeError("non_finite", f"number out of range: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError("invalid_json", f"invalid JSON: {exc}") from None


def _parse_ts(value: object, field: str) -> datetime:
    """RFC 3339 with an offset, or integer epoch milliseconds -> tz-aware UTC datetime."""
    if type(value) is str:
        if _RFC3339.fullmatch(value) is None:
            raise DecodeError("bad_timestamp", f"{field}: not RFC 3339 with an offset: {value!r}")
        if value[-1] in "Zz":
            value = value[:-1] + "+00:00"
        try:
            ts = datetime.fromisoformat(value)
            return ts if ts.tzinfo is UTC else ts.astimezone(UTC)
        except (ValueError, OverflowError):
            raise DecodeError("bad_timestamp", f"{field}: invalid date/time: {value!r}") from None
    if type(value) is int:
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise DecodeError("bad_timestamp", f"{field}: epoch ms out of range") from None
    raise DecodeError(
        f"bad_type:{field}", f"{field} must be an RFC 3339 string or integer epoch milliseconds"
    )


def _finite(value: object, field: str) -> float:
    """A JSON number (not a boolean) as a finite float."""
    if type(value) is float:
        if not math.isfinite(value):
            raise DecodeError("non_finite", f"{field} is not finite")
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise DecodeError("non_finite", f"{field} is out of range") from None
    raise DecodeError(f"bad_type:{field}", f"{field} must be a number")


def _energy(value: object, field: str) -> float:
    energy = _finite(value, field)
    if energy < 0:
        raise DecodeError("negative_energy", f"{field} is negative: {energy!r}")
    if energy > MAX_REGISTER_KWH:
        raise DecodeError(
            f"out_of_range:{field}", f"{field} {energy!r} is above {MAX_REGISTER_KWH:g} kWh"
        )
    return energy + 0.0  # -0.0 -> 0.0


def _power(value: object, max_power_w: float) -> float:
    power = _finite(value, "power_w")
    if not -max_power_w <= power <= max_power_w:  # negative: a bidirectional meter exporting
        raise DecodeError("out_of_range:power_w", f"power_w {power!r} is beyond ±{max_power_w:g} W")
    return power


def _int(value: object, field: str, minimum: int, maximum: int = _MAX_SEQ) -> int:
    if type(value) is not int:
        raise DecodeError(f"bad_type:{field}", f"{field} must be an integer")
    if not minimum <= value <= maximum:
        raise DecodeError(f"bad_value:{field}", f"{field} must be in [{minimum}, {maximum}]")
    return value


def _uuid(value: object, field: str) -> UUID:
    if type(value) is not str:
        raise DecodeError(f"bad_type:{field}", f"{field} must be a UUID string")
    try:
        return UUID(value)
    except ValueError:
        raise DecodeError(f"bad_value:{field}", f"{field} is not a UUID: {value!r}") from None


def _check_device(value: object, device_id: UUID, device_str: str) -> None:
    if value is None or value == device_str:
        return
    if type(value) is not str:
        raise DecodeError("bad_type:device_id", "device_id must be a UUID string")
    try:
        same = UUID(value) == device_id
    except ValueError:
        same = False
    if not same:
        raise DecodeError("device_mismatch", f"payload device_id {value!r} != topic {device_str}")


def _object(value: object) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError("not_object", f"expected a JSON object, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


class Reading(msgspec.Struct, frozen=True, gc=False):
    """One meter reading as received. (A frozen struct, not a dataclass: the hub builds one
    per reading, and this is a quarter of a frozen dataclass's construction cost.)

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


def _reading(
    obj: dict[str, Any], device_id: UUID, device_str: str, limit: datetime, max_power_w: float
) -> Reading:
    get = obj.get
    raw_ts = get("ts", _MISSING)
    raw_energy = get("energy_kwh", _MISSING)
    source: ReadingSource = "v1"
    seq: int | None = None
    power_w: float | None = None
    if (
        raw_ts is _MISSING
        and raw_energy is _MISSING
        and ("measurement_value" in obj or "timestamp" in obj)
    ):
        # Classic simulator message: {"timestamp": ms, "device_id": "...", "measurement_value": x}
        source = "classic"
        raw_ts = get("timestamp", _MISSING)
        if raw_ts is _MISSING:
            raise DecodeError("missing_field:timestamp", "missing field: timestamp")
        raw_energy = get("measurement_value", _MISSING)
        if raw_energy is _MISSING:
            raise DecodeError("missing_field:measurement_value", "missing field: measurement_value")
        ts = _parse_ts(raw_ts, "timestamp")
        energy = _energy(raw_energy, "measurement_value")
    else:
        if raw_ts is _MISSING:
            raise DecodeError("missing_field:ts", "missing field: ts")
        if raw_energy is _MISSING:
            raise DecodeError("missing_field:energy_kwh", "missing field: energy_kwh")
        ts = _parse_ts(raw_ts, "ts")
        energy = _energy(raw_energy, "energy_kwh")
        raw = get("seq")
        if raw is not None:
            seq = _int(raw, "seq", 0)
        raw = get("power_w")
        if raw is not None:
            power_w = _power(raw, max_power_w)
    _check_device(get("device_id"), device_id, device_str)
    if ts > limit:
        raise DecodeError("future_timestamp", f"timestamp {ts.isoformat()} is in the future")
    return Reading(device_id, ts, energy, seq, power_w, source)


def decode_readings(
    topic_device_id: UUID,
    payload: Buffer,
    *,
    now: datetime,
    max_future: timedelta = timedelta(minutes=5),
    max_batch: int = MAX_BATCH,
    max_power_w: float = MAX_POWER_W,
) -> list[Reading]:
    """Every reading of the payload, or ``DecodeError``: the strict form of
    ``decode_readings_partial`` (a bad element raises, ``DecodeError.index`` tells which)."""
    readings, rejected = decode_readings_partial(
        topic_device_id,
        payload,
        now=now,
        max_future=max_future,
        max_batch=max_batch,
        max_power_w=max_power_w,
    )
    if rejected:
        raise rejected[0]
    return readings


def decode_readings_partial(
    topic_device_id: UUID,
    payload: Buffer,
    *,
    now: datetime,
    max_future: timedelta = timedelta(minutes=5),
    max_batch: int = MAX_BATCH,
    max_power_w: float = MAX_POWER_W,
) -> tuple[list[Reading], list[DecodeError]]:
    """Decode a readings payload: a v1 object, an array of 1..``max_batch`` of them, or the
    classic simulator message (or an array of those) -> ``(readings, rejected elements)``.

    A bad array element is returned in ``rejected`` (with ``index`` and ``element``) and the
    others are decoded; a payload that is bad as a whole (including a single bad object)
    raises ``DecodeError``. Unknown fields are ignored; ``null`` for an optional field means
    absent. ``now`` must be timezone-aware; readings later than ``now + max_future`` are
    rejected, and so is a ``power_w`` beyond ``±max_power_w``.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        limit = now + max_future
    except OverflowError:
        limit = datetime.max.replace(tzinfo=UTC)
    fast = _decode_typed(topic_device_id, payload, limit, max_batch, max_power_w)
    if fast is not None:
        return fast, []
    return _decode_general(topic_device_id, payload, limit, max_batch, max_power_w)


class _V1Reading(msgspec.Struct, gc=False):
    """The shape of a well-formed v1 reading, for ``_decode_typed``. Only the JSON types are
    checked here; every value is checked by the same functions as in ``_decode_general``."""

    ts: str | int | msgspec.UnsetType = msgspec.UNSET
    energy_kwh: float | msgspec.UnsetType = msgspec.UNSET
    seq: int | None = None
    power_w: float | None = None
    device_id: str | None = None


_typed_decoder: Final = msgspec.json.Decoder(_V1Reading | list[_V1Reading])


def _decode_typed(
    device_id: UUID,
    payload: Buffer,
    limit: datetime,
    max_batch: int,
    max_power_w: float = MAX_POWER_W,
) -> list[Reading] | None:
    """The hub's hot path: a valid v1 object or array decoded by msgspec straight into typed
    fields (no dict per reading). ``None`` for anything else (a classic message, any error,
    even in one element): ``_decode_general`` then decodes it, and its result, or its error,
    is the answer. So this returns either the readings of a ``_decode_general`` result with
    nothing rejected, or ``None`` (tests/unit/test_protocol.py checks it on generated
    payloads)."""
    if not (isinstance(payload, bytes | bytearray) and payload.isascii()):
        # Typed decoding skips unknown keys without checking their UTF-8, which the general
        # decoder rejects: non-ASCII (rare from a meter) goes there.
        return None
    try:
        doc = _typed_decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):  # ValidationError too
        return None
    items = doc if type(doc) is list else [doc]
    if not 0 < len(items) <= max_batch:
        return None
    out: list[Reading] = []
    append = out.append
    try:
        for item in items:
            raw_ts, raw_energy = item.ts, item.energy_kwh
            if raw_ts is msgspec.UNSET or raw_energy is msgspec.UNSET:
                return None  # a classic message, or a missing field
            ts = _parse_ts(raw_ts, "ts")
            energy = _energy(raw_energy, "energy_kwh")
            seq = item.seq
            if seq is not None:
                seq = _int(seq, "seq", 0)
            power_w = item.power_w
            if power_w is not None:
                power_w = _power(power_w, max_power_w)
            if item.device_id is not None:
                _check_device(item.device_id, device_id, str(device_id))
            if ts > limit:
                return None
            append(Reading(device_id, ts, energy, seq, power_w, "v1"))
    except DecodeError:
        return None
    return out


def _decode_general(
    topic_device_id: UUID,
    payload: Buffer,
    limit: datetime,
    max_batch: int,
    max_power_w: float = MAX_POWER_W,
) -> tuple[list[Reading], list[DecodeError]]:
    """Every shape the contract allows and every way a payload can be wrong, with its reason."""
    device_str = str(topic_device_id)
    doc = _loads(payload)
    if type(doc) is dict:
        return [_reading(doc, topic_device_id, device_str, limit, max_power_w)], []
    if type(doc) is not list:
        raise DecodeError("not_object", f"expected an object or an array, got {type(doc).__name__}")
    n = len(doc)
    if n == 0:
        raise DecodeError("empty_batch", "empty readings array")
    if n > max_batch:
        raise DecodeError("batch_too_large", f"{n} readings > {max_batch}")
    out: list[Reading] = []
    rejected: list[DecodeError] = []
    for index, item in enumerate(doc):
        try:
            out.append(_reading(_object(item), topic_device_id, device_str, limit, max_power_w))
        except DecodeError as exc:
            rejected.append(
                DecodeError(
                    exc.reason,
                    f"element {index}: {exc.message}",
                    index,
                    truncate_payload(_encode(item), ELEMENT_EXCERPT),
                )
            )
    return out, rejected


ELEMENT_EXCERPT: Final = 512
"""Bytes of a rejected array element kept in its dead letter."""


def _format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with a ``Z``: milliseconds, or microseconds when they are not whole ms."""
    if ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    u = ts.astimezone(UTC)
    us = u.microsecond
    frac = f"{us // 1000:03d}" if us % 1000 == 0 else f"{us:06d}"
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{frac}Z"
    )


def _check_energy(value: float) -> float:
    if type(value) is bool or not math.isfinite(value) or value < 0:
        raise ValueError(f"energy must be a finite number >= 0, got {value!r}")
    return float(value)


def _reading_obj(r: Reading) -> dict[str, Any]:
    obj: dict[str, Any] = {"ts": _format_ts(r.ts)}
    if r.seq is not None:
        if type(r.seq) is not int or not 0 <= r.seq <= _MAX_SEQ:
            raise ValueError(f"seq must be an int in [0, 2**63-1], got {r.seq!r}")
        obj["seq"] = r.seq
    obj["energy_kwh"] = _check_energy(r.energy_kwh)
    if r.power_w is not None:
        if type(r.power_w) is bool or not math.isfinite(r.power_w):
            raise ValueError(f"power_w must be finite, got {r.power_w!r}")
        obj["power_w"] = float(r.power_w)
    return obj


def encode_reading(r: Reading) -> bytes:
    """A v1 reading object (no ``device_id``: the topic carries it)."""
    return _encode(_reading_obj(r))


def encode_readings(rs: Iterable[Reading]) -> bytes:
    """A v1 readings array of 1..MAX_BATCH elements (a store-and-forward flush)."""
    objs = [_reading_obj(r) for r in rs]
    if not 1 <= len(objs) <= MAX_BATCH:
        raise ValueError(f"a readings array holds 1..{MAX_BATCH} readings, got {len(objs)}")
    return _encode(objs)


def encode_classic(device_id: UUID | str, ts: datetime | int, value: float) -> bytes:
    """The classic simulator message, unchanged:
    ``{"timestamp": ms, "device_id": "...", "measurement_value": x}``.

    A datetime ``ts`` is truncated to whole milliseconds.
    """
    if isinstance(ts, datetime):
        if ts.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware")
        ms = (ts - _EPOCH) // _MS
    elif type(ts) is int:
        ms = ts
    else:
        raise TypeError("ts must be a datetime or integer epoch milliseconds")
    return _encode(
        {
            "timestamp": ms,
            "device_id": _uuid_segment(device_id),
            "measurement_value": _check_energy(value),
        }
    )


# --------------------------------------------------------------------------------------------
# Status (retained; "offline" is also the last will)
# --------------------------------------------------------------------------------------------

_STATES: Final[dict[str, StatusState]] = {"online": "online", "offline": "offline"}


def encode_status(state: StatusState, ts: datetime | None) -> bytes:
    """``{"state": ..., "ts": ...}``; ``ts=None`` omits it (e.g. a last will set long before)."""
    if state not in _STATES:
        raise ValueError(f"state must be 'online' or 'offline', got {state!r}")
    obj: dict[str, str] = {"state": state}
    if ts is not None:
        obj["ts"] = _format_ts(ts)
    return _encode(obj)


def decode_status(payload: Buffer) -> tuple[StatusState, datetime | None]:
    """-> ``(state, ts)``; ``ts`` is ``None`` when absent or null.

    An empty payload (a cleared retained message) raises with reason ``empty_payload``.
    """
    obj = _object(_loads(payload))
    raw = obj.get("state", _MISSING)
    if raw is _MISSING:
        raise DecodeError("missing_field:state", "missing field: state")
    if type(raw) is not str:
        raise DecodeError("bad_type:state", "state must be a string")
    state = _STATES.get(raw)
    if state is None:
        raise DecodeError("bad_value:state", f"unknown state {raw!r}")
    raw_ts = obj.get("ts")
    return state, None if raw_ts is None else _parse_ts(raw_ts, "ts")


# --------------------------------------------------------------------------------------------
# Commands (hub -> meter)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResendCmd:
    """Resend stored readings from ``from_seq`` on."""

    from_seq: int


@dataclass(frozen=True, slots=True)
class ConfigCmd:
    """Set the reading interval, in seconds (>= 1)."""

    interval_s: int


def encode_cmd_resend(from_seq: int) -> bytes:
    if type(from_seq) is not int or not 0 <= from_seq <= _MAX_SEQ:
        raise ValueError(f"from_seq must be an int in [0, 2**63-1], got {from_seq!r}")
    return _encode({"cmd": "resend", "from_seq": from_seq})


def encode_cmd_config(interval_s: int) -> bytes:
    if type(interval_s) is not int or not 1 <= interval_s <= _MAX_SEQ:
        raise ValueError(f"interval_s must be a positive int, got {interval_s!r}")
    return _encode({"cmd": "config", "interval_s": interval_s})


def _required(obj: dict[str, Any], field: str) -> object:
    value = obj.get(field, _MISSING)
    if value is _MISSING:
        raise DecodeError(f"missing_field:{field}", f"missing field: {field}")
    return value


def decode_cmd(payload: Buffer) -> ResendCmd | ConfigCmd:
    obj = _object(_loads(payload))
    cmd = _required(obj, "cmd")
    if type(cmd) is not str:
        raise DecodeError("bad_type:cmd", "cmd must be a string")
    if cmd == "resend":
        return ResendCmd(_int(_required(obj, "from_seq"), "from_seq", 0))
    if cmd == "config":
        return ConfigCmd(_int(_required(obj, "interval_s"), "interval_s", 1))
    raise DecodeError("bad_value:cmd", f"unknown cmd {cmd!r}")


# --------------------------------------------------------------------------------------------
# Device events (portal -> hubs, topic semantics)
# --------------------------------------------------------------------------------------------

_ACTIONS: Final[dict[str, DeviceAction]] = {
    "created": "created",
    "updated": "updated",
    "deleted": "deleted",
    "owner_changed": "owner_changed",
}
_METER_KIND_VALUES: Final[dict[str, MeterKind]] = {
    "cumulative": "cumulative",
    "interval": "interval",
}


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A device's settings after a change (``deleted``: the settings it had)."""

    action: DeviceAction
    device_id: UUID
    owner_id: UUID | None = None
    max_hourly_kwh: float | None = None
    meter_kind: MeterKind = "cumulative"
    rated_power_w: float | None = None
    interval_s: int | None = None


def _optional_non_negative(value: object, field: str) -> float | None:
    if value is None:
        return None
    number = _finite(value, field)
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
        type(event.interval_s) is not int or not 1 <= event.interval_s <= _MAX_SEQ
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
    obj = _object(_loads(payload))
    raw = _required(obj, "action")
    if type(raw) is not str:
        raise DecodeError("bad_type:action", "action must be a string")
    action = _ACTIONS.get(raw)
    if action is None:
        raise DecodeError("bad_value:action", f"unknown action {raw!r}")
    device_id = _uuid(_required(obj, "device_id"), "device_id")
    raw = obj.get("owner_id")
    owner_id = None if raw is None else _uuid(raw, "owner_id")
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
        interval_s=None if raw is None else _int(raw, "interval_s", 1),
    )


# --------------------------------------------------------------------------------------------
# Alert events: ems/v1/events/alerts/{user_id} (hub → portals; acknowledgements portal → portals)
# --------------------------------------------------------------------------------------------


class AlertFacts(msgspec.Struct, kw_only=True):
    """An alert as stored in the ``alerts`` table (the portal's API shape extends it)."""

    id: UUID
    device_id: UUID
    user_id: UUID | None
    kind: str
    hour: datetime | None
    limit_kwh: float | None
    value_kwh: float | None
    projected_kwh: float | None
    final_kwh: float | None
    late: bool
    status: str
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: UUID | None = None


class AlertEvent(AlertFacts, kw_only=True):
    """What happened to the alert: ``raised``, ``updated``, ``retracted`` (the hub) or
    ``acknowledged`` (a portal replica, after its commit)."""

    event: str


encode_alert_event = msgspec.json.Encoder().encode
_decode_alert_event = msgspec.json.Decoder(AlertEvent).decode


def decode_alert_event(payload: Buffer) -> AlertEvent:
    try:
        return _decode_alert_event(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise DecodeError("bad_alert_event", str(exc)[:200]) from None


# --------------------------------------------------------------------------------------------
# Dead letters and logs
# --------------------------------------------------------------------------------------------


def truncate_payload(payload: Buffer, limit: int = 1024) -> str:
    """Payload as text for dead letters and logs: UTF-8 with replacement, at most ``limit``
    bytes of it, then ``…(N bytes)`` with the full size when cut. NUL characters (which a
    PostgreSQL ``text`` column refuses) become U+FFFD."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    data = bytes(payload)
    if len(data) <= limit:
        text = data.decode("utf-8", "replace")
        suffix = ""
    else:
        # final=False drops a multi-byte character cut in half instead of showing U+FFFD.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data[:limit], final=False)
        suffix = f"…({len(data)} bytes)"
    return text.replace("\x00", "\ufffd") + suffix
