"""A simulated meter's register: where the energy comes from, and how it accumulates."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from device_sim.config import ConfigError
from device_sim.profiles import ResidentialProfile
from device_sim.replay import ReplaySource
from firmware_stub.model import Measurement


class Source(Protocol):
    @property
    def digits(self) -> int:
        """Decimals the register is reported with."""
        ...

    def initial_register(self) -> float: ...

    def energy_between(self, t0: datetime, t1: datetime) -> float: ...


def make_source(
    kind: str, *, seed: int, timezone: str, replay_file: Path | None, origin: datetime
) -> Source:
    if kind == "replay":
        if replay_file is None:
            raise ConfigError("source 'replay' needs a replay file (--replay FILE or replay_file)")
        return ReplaySource.load(replay_file, origin)
    return ResidentialProfile(seed, zone(timezone))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (an IANA name: Europe/Paris)") from None


class RegisterSensor:
    """The cumulative register of a simulated meter, read at each slot.

    Energy accumulates from reading to reading; a meter that already has readings (restarted,
    its buffer re-opened) continues from the last one instead of starting over.
    """

    def __init__(
        self, source: Source, *, start: datetime, last: tuple[datetime, float] | None = None
    ) -> None:
        self._source = source
        self._ts, self._energy = last if last is not None else (start, source.initial_register())

    def __call__(self, ts: datetime) -> Measurement:
        digits = self._source.digits
        if ts <= self._ts:
            return Measurement(round(self._energy, digits))
        delta = self._source.energy_between(self._ts, ts)
        hours = (ts - self._ts).total_seconds() / 3600.0
        self._ts, self._energy = ts, self._energy + delta
        power = round(delta / hours * 1000.0, 1) if delta >= 0 else None
        return Measurement(round(self._energy, digits), power)
