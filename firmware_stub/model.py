"""The meter's value types: what the sensor reports, settings, state and counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import msgspec

from common.backoff import BackoffPolicy
from contract.readings import MAX_BATCH


class Measurement(msgspec.Struct, frozen=True, gc=False):
    """What the metrology reports: the cumulative register, optionally power and its own time
    (``ts=None``: the reading's slot time). A frozen struct: one is built per reading, and a
    frozen dataclass costs ten times as much to build (``msgspec.structs.replace`` changes
    one)."""

    energy_kwh: float
    power_w: float | None = None
    ts: datetime | None = None


Sensor = Callable[[datetime], Measurement]
"""Called with the slot time a reading is taken for."""


@dataclass(frozen=True, slots=True)
class MeterConfig:
    interval_s: int = 600
    window: int = 4  # readings publishes in flight at once
    batch_max: int = MAX_BATCH  # readings per store-and-forward message
    sync_every: int = 16  # buffer records; the buffer's recovery_gap must be at least this
    sync_interval_s: float = 5.0  # at most this long between a record and its fsync
    connect_timeout_s: float = 30.0
    stop_timeout_s: float = 5.0
    retry_refused: bool = False  # keep retrying after the broker refused the credentials
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)

    def __post_init__(self) -> None:
        if self.interval_s < 1:
            raise ValueError("interval_s must be >= 1")
        if not 1 <= self.batch_max <= MAX_BATCH:
            raise ValueError(f"batch_max must be in 1..{MAX_BATCH}")
        if self.window < 1 or self.sync_every < 1:
            raise ValueError("window and sync_every must be >= 1")


class State(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    WAITING = "waiting"  # for the next reconnect attempt
    REFUSED = "refused"  # the broker rejected the credentials; no more attempts
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class MeterStats:
    produced: int = 0  # readings taken
    acked: int = 0  # readings whose publish the broker acknowledged
    messages: int = 0  # readings publishes (objects and arrays), resends excluded
    resent: int = 0  # readings republished for a resend command
    missed_slots: int = 0  # reading slots skipped because poll() came too late
    connects: int = 0
    disconnects: int = 0
    rejected: int = 0  # readings the broker refused (PUBACK with an error)
    unrouted: int = 0  # readings answered "no matching subscribers" (each try), kept and resent
    refused: int = 0  # connection attempts whose credentials the broker refused
    bad_commands: int = 0
