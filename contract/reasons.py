"""Why a message is refused: ``DecodeError`` and the registry of dead-letter reasons.

A reason is short and machine-readable: a family (``missing_field``), optionally with the field
it is about (``missing_field:ts``). The family is stored in the dead-letter table and is the
``reason`` label of ``hub_messages_rejected``; meter makers read the list in docs/mqtt.md
(tests/unit/test_docs_contract.py holds the two together).
"""

from __future__ import annotations

import codecs
from typing import Final, TypeAlias

__all__ = ["DEAD_LETTER_REASONS", "Buffer", "DecodeError", "reason_family", "truncate_payload"]

Buffer: TypeAlias = bytes | bytearray | memoryview
"""A payload as the MQTT clients hand it over."""

DEAD_LETTER_REASONS: Final = frozenset(
    {
        # the payload codec (contract.readings and contract.codec)
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
``missing_field:ts``."""


def reason_family(reason: str) -> str:
    """``missing_field:ts`` -> ``missing_field``; a reason without a field is its own family."""
    return reason.partition(":")[0]


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
