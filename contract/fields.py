"""Value parsing and formatting shared by the payload codecs (``contract.readings``,
``contract.codec``): JSON loading, timestamps, numbers, ids. Each raises ``DecodeError`` with
the contract's reason. The readings hot path calls these per reading: keep them lean."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import msgspec

from contract.reasons import Buffer, DecodeError

MISSING: Final = object()
"""``dict.get`` default telling an absent field from a ``null`` one."""
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_SEQ: Final = 2**63 - 1  # stored as bigint
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_decoder: Final = msgspec.json.Decoder()


def loads(payload: Buffer) -> Any:
    if len(payload) == 0:
        raise DecodeError("empty_payload", "empty payload")
    try:
        return _decoder.decode(payload)
    except msgspec.ValidationError as exc:  # only "Number out of range" for untyped decoding
        raise DecodeError("non_finite", f"number out of range: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError("invalid_json", f"invalid JSON: {exc}") from None


def parse_ts(value: object, field: str) -> datetime:
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
            return EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise DecodeError("bad_timestamp", f"{field}: epoch ms out of range") from None
    raise DecodeError(
        f"bad_type:{field}", f"{field} must be an RFC 3339 string or integer epoch milliseconds"
    )


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with a ``Z``: milliseconds, or microseconds when they are not whole ms."""
    if ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    u = ts.astimezone(UTC)
    us = u.microsecond
    frac = f"{us // 1000:03d}" if us % 1000 == 0 else f"{us:06d}"
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{frac}Z"
    )


def finite(value: object, field: str) -> float:
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


def integer(value: object, field: str, minimum: int, maximum: int = MAX_SEQ) -> int:
    if type(value) is not int:
        raise DecodeError(f"bad_type:{field}", f"{field} must be an integer")
    if not minimum <= value <= maximum:
        raise DecodeError(f"bad_value:{field}", f"{field} must be in [{minimum}, {maximum}]")
    return value


def uuid_field(value: object, field: str) -> UUID:
    if type(value) is not str:
        raise DecodeError(f"bad_type:{field}", f"{field} must be a UUID string")
    try:
        return UUID(value)
    except ValueError:
        raise DecodeError(f"bad_value:{field}", f"{field} is not a UUID: {value!r}") from None


def json_object(value: object) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError("not_object", f"expected a JSON object, got {type(value).__name__}")
    return value


def required(obj: dict[str, Any], field: str) -> object:
    value = obj.get(field, MISSING)
    if value is MISSING:
        raise DecodeError(f"missing_field:{field}", f"missing field: {field}")
    return value
