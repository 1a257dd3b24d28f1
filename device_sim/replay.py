"""Replaying a recorded meter: a file in the sensor.csv format.

One cumulative kWh value per line, one line every 10 minutes, no timestamps (the simulation
assigns them: line 1 at the run's start, line 2 ten minutes later...). Between lines the
register is interpolated linearly, so any reading interval works; at the end of the file the
replay starts over from the top, continuing upward from the last value (the register never
jumps back).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

STEP_S = 600.0


class ReplayError(ValueError):
    pass


@functools.cache
def read_values(path: Path) -> tuple[float, ...]:
    """The file's values (read once per path and shared: a fleet may replay one file.)"""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    values: list[float] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ReplayError(
                f"{path} line {number}: {text[:40]!r} is not a number - a replay file has one "
                "cumulative kWh value per line"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise ReplayError(f"{path} line {number}: {text!r} is not a kWh register value")
        values.append(value)
    if len(values) < 2:
        raise ReplayError(f"{path}: needs at least two values (it has {len(values)})")
    return tuple(values)


@functools.cache
def file_digits(path: Path) -> int:
    """Decimals the file's values are written with (3..9): the register is reported with as
    many, so that a replay reproduces the file's values exactly."""
    text = path.read_text(encoding="utf-8")
    most = max((len(m) for m in re.findall(r"\.(\d+)", text)), default=0)
    return min(max(most, 3), 9)


class ReplaySource:
    def __init__(
        self, values: Sequence[float], origin: datetime, step_s: float = STEP_S, digits: int = 9
    ) -> None:
        if len(values) < 2:
            raise ReplayError("a replay needs at least two values")
        self._values = values
        self._origin = origin
        self._step = step_s
        self.digits = digits

    @classmethod
    def load(cls, path: Path, origin: datetime) -> ReplaySource:
        return cls(read_values(path), origin, digits=file_digits(path))

    def initial_register(self) -> float:
        return self._values[0]

    def offset(self, ts: datetime) -> float:
        """Energy from the first line to ``ts`` (the register minus the first value)."""
        v = self._values
        x = (ts - self._origin).total_seconds() / self._step
        if x <= 0:
            return 0.0
        i = math.floor(x)
        cycle, j = divmod(i, len(v) - 1)
        return cycle * (v[-1] - v[0]) + (v[j] - v[0]) + (x - i) * (v[j + 1] - v[j])

    def energy_between(self, t0: datetime, t1: datetime) -> float:
        return self.offset(t1) - self.offset(t0) if t1 > t0 else 0.0
