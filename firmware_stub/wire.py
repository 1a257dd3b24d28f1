"""What the meter puts on the wire and how it reacts to commands (ARCHITECTURE.md section 3).

The payloads come from the ``contract`` package - the contract's single implementation, which
the hub imports too - so the meter and the hub cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from contract.codec import decode_cmd
from contract.payloads import ConfigCmd, Reading, ResendCmd
from contract.readings import encode_classic, encode_reading, encode_readings
from contract.reasons import DecodeError, truncate_payload
from firmware_stub.records import StoredReading

log = logging.getLogger("firmware_stub.wire")

Encoder = Callable[[UUID, Sequence[StoredReading]], bytes]
"""One reading -> a message; several (a store-and-forward flush) -> one JSON array."""


def _reading(device_id: UUID, r: StoredReading) -> Reading:
    return Reading(device_id, r.ts, r.energy_kwh, r.seq, r.power_w)


def encode_v1(device_id: UUID, readings: Sequence[StoredReading]) -> bytes:
    if len(readings) == 1:
        return encode_reading(_reading(device_id, readings[0]))
    return encode_readings(_reading(device_id, r) for r in readings)


def encode_classic_batch(device_id: UUID, readings: Sequence[StoredReading]) -> bytes:
    """The classic simulator message (no seq, no power); an array of them for a flush."""
    parts = [encode_classic(device_id, r.ts_ms, r.energy_kwh) for r in readings]
    return parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"


ENCODERS: dict[str, Encoder] = {"v1": encode_v1, "classic": encode_classic_batch}


class CommandTarget(Protocol):
    device_id: UUID

    def resend(self, from_seq: int) -> int: ...

    def set_interval(self, interval_s: int) -> None: ...


def handle_command(target: CommandTarget, payload: bytes) -> bool:
    """Decode and carry out a command from the cmd topic; False (and a log line) if bad."""
    try:
        cmd = decode_cmd(payload)
    except DecodeError as exc:
        log.warning(
            "meter %s: ignored a bad command (%s): %s",
            target.device_id,
            exc.reason,
            truncate_payload(payload, 200),
        )
        return False
    if isinstance(cmd, ResendCmd):
        count = target.resend(cmd.from_seq)
        log.info("meter %s: resent %d readings from seq %d", target.device_id, count, cmd.from_seq)
    elif isinstance(cmd, ConfigCmd):
        target.set_interval(cmd.interval_s)
        log.info("meter %s: reading interval set to %d s", target.device_id, cmd.interval_s)
    return True
