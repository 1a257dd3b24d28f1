"""The readings payload of contract v1 (``ems/v1/meters/{device_id}/readings``, ARCHITECTURE.md
§3): its limits, its decoder (the hub's hot path) and its encoders (meters, the simulator).
Pure: no I/O, and the only dependency is ``msgspec``.

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

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import msgspec

from contract.enums import ReadingSource
from contract.fields import (
    EPOCH,
    MAX_SEQ,
    MISSING,
    finite,
    format_ts,
    integer,
    json_object,
    loads,
    parse_ts,
)
from contract.payloads import Reading
from contract.reasons import Buffer, DecodeError, truncate_payload
from contract.topics import id_segment

__all__ = [
    "ELEMENT_EXCERPT",
    "MAX_BATCH",
    "MAX_POWER_W",
    "MAX_REGISTER_KWH",
    "decode_readings",
    "decode_readings_partial",
    "encode_classic",
    "encode_reading",
    "encode_readings",
]

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

_MS: Final = timedelta(milliseconds=1)
_encode: Final = msgspec.json.encode


def _energy(value: object, field: str) -> float:
    energy = finite(value, field)
    if energy < 0:
        raise DecodeError("negative_energy", f"{field} is negative: {energy!r}")
    if energy > MAX_REGISTER_KWH:
        raise DecodeError(
            f"out_of_range:{field}", f"{field} {energy!r} is above {MAX_REGISTER_KWH:g} kWh"
        )
    return energy + 0.0  # -0.0 -> 0.0


def _power(value: object, max_power_w: float) -> float:
    power = finite(value, "power_w")
    if not -max_power_w <= power <= max_power_w:  # negative: a bidirectional meter exporting
        raise DecodeError("out_of_range:power_w", f"power_w {power!r} is beyond ±{max_power_w:g} W")
    return power


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


def _reading(
    obj: dict[str, Any], device_id: UUID, device_str: str, limit: datetime, max_power_w: float
) -> Reading:
    get = obj.get
    raw_ts = get("ts", MISSING)
    raw_energy = get("energy_kwh", MISSING)
    source: ReadingSource = "v1"
    seq: int | None = None
    power_w: float | None = None
    if (
        raw_ts is MISSING
        and raw_energy is MISSING
        and ("measurement_value" in obj or "timestamp" in obj)
    ):
        # Classic simulator message: {"timestamp": ms, "device_id": "...", "measurement_value": x}
        source = "classic"
        raw_ts = get("timestamp", MISSING)
        if raw_ts is MISSING:
            raise DecodeError("missing_field:timestamp", "missing field: timestamp")
        raw_energy = get("measurement_value", MISSING)
        if raw_energy is MISSING:
            raise DecodeError("missing_field:measurement_value", "missing field: measurement_value")
        ts = parse_ts(raw_ts, "timestamp")
        energy = _energy(raw_energy, "measurement_value")
    else:
        if raw_ts is MISSING:
            raise DecodeError("missing_field:ts", "missing field: ts")
        if raw_energy is MISSING:
            raise DecodeError("missing_field:energy_kwh", "missing field: energy_kwh")
        ts = parse_ts(raw_ts, "ts")
        energy = _energy(raw_energy, "energy_kwh")
        raw = get("seq")
        if raw is not None:
            seq = integer(raw, "seq", 0)
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
            ts = parse_ts(raw_ts, "ts")
            energy = _energy(raw_energy, "energy_kwh")
            seq = item.seq
            if seq is not None:
                seq = integer(seq, "seq", 0)
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
    doc = loads(payload)
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
            out.append(_reading(json_object(item), topic_device_id, device_str, limit, max_power_w))
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


def _check_energy(value: float) -> float:
    if type(value) is bool or not math.isfinite(value) or value < 0:
        raise ValueError(f"energy must be a finite number >= 0, got {value!r}")
    return float(value)


class _V1Out(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A v1 reading as sent: these keys in this order, ``seq`` and ``power_w`` left out when
    absent. A struct, not a dict: meters (``ems-sim`` runs thousands) encode one per reading,
    and msgspec writes a struct in half the time of the same dict, byte for byte the same."""

    ts: str
    seq: int | None = None
    energy_kwh: float
    power_w: float | None = None


_last_ts: tuple[datetime, str] = (EPOCH, format_ts(EPOCH))


def _ts_text(ts: datetime) -> str:
    """``format_ts(ts)``, remembering the last one: the text depends only on the instant, and
    a simulated fleet encodes thousands of readings of the same slot in a row. Otherwise, for
    a UTC datetime, the C ``isoformat`` writes the same digits (``+00:00`` becomes ``Z``) in a
    fifth of the time."""
    global _last_ts
    last = _last_ts
    if ts == last[0]:  # an instant (a naive ts is never equal to it, and raises below)
        return last[1]
    if ts.tzinfo is UTC:
        spec = "milliseconds" if ts.microsecond % 1000 == 0 else "microseconds"
        text = ts.isoformat(timespec=spec)[:-6] + "Z"
    else:
        text = format_ts(ts)
    _last_ts = (ts, text)  # one assignment: another thread sees the old pair or the new
    return text


def _reading_out(r: Reading) -> _V1Out:
    seq, power = r.seq, r.power_w
    if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_SEQ):
        raise ValueError(f"seq must be an int in [0, 2**63-1], got {seq!r}")
    if power is not None:
        if type(power) is bool or not math.isfinite(power):
            raise ValueError(f"power_w must be finite, got {power!r}")
        power = float(power)
    return _V1Out(ts=_ts_text(r.ts), seq=seq, energy_kwh=_check_energy(r.energy_kwh), power_w=power)


def encode_reading(r: Reading) -> bytes:
    """A v1 reading object (no ``device_id``: the topic carries it)."""
    return _encode(_reading_out(r))


def encode_readings(rs: Iterable[Reading]) -> bytes:
    """A v1 readings array of 1..MAX_BATCH elements (a store-and-forward flush)."""
    objs = [_reading_out(r) for r in rs]
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
        ms = (ts - EPOCH) // _MS
    elif type(ts) is int:
        ms = ts
    else:
        raise TypeError("ts must be a datetime or integer epoch milliseconds")
    return _encode(
        {
            "timestamp": ms,
            "device_id": id_segment(device_id),
            "measurement_value": _check_energy(value),
        }
    )
