"""Time as the meter sees it: a wall clock for timestamps and a monotonic clock for timers.

Readings are stamped and scheduled with ``now()`` (the meter's wall clock, which a simulation
may run faster than real time); reconnect backoff and buffer syncs use ``monotonic()`` (real
seconds), so a fast simulation does not hammer the broker. ``speed`` converts between the two:
``now()`` advances ``speed`` seconds per ``monotonic()`` second.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    @property
    def speed(self) -> float: ...

    def now(self) -> datetime:
        """The meter's wall-clock time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Real seconds from an arbitrary origin; never goes back."""
        ...


class SystemClock:
    """Real time, for a device."""

    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ScaledClock:
    """Simulated wall time starting at ``start`` and running ``speed`` times faster than real
    time; ``monotonic()`` is real time (the asyncio loop's clock)."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._origin = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self._speed)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Time that moves only when a test says so: ``advance(seconds)`` moves the monotonic clock
    by ``seconds`` and the wall clock by ``seconds * speed``."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._mono = 1000.0
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go back")
        self._mono += seconds
        self._now += timedelta(seconds=seconds * self._speed)
