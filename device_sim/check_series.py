"""The known series ``ems-sim check`` sends, the hourly energy it must produce, and the report.

The expected hourly energy is computed here independently of the hub, from the contract
(ARCHITECTURE.md section 4) for a clean series: readings at most an hour apart, register only
increasing, so each delta belongs wholly to the UTC hour in which its later reading falls and
the first reading is the baseline.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from device_sim.profiles import ResidentialProfile
from device_sim.sources import RegisterSensor
from device_sim.timeparse import floor_time

HOUR = timedelta(hours=1)


def known_series(
    end: datetime, hours: int, seed: int, interval_s: int = 600
) -> list[tuple[datetime, float]]:
    """Readings every ``interval_s`` that fill the ``hours`` whole hours before ``end`` (on the
    hour): a baseline one interval before the first hour, the last one interval before
    ``end``. Values from the seeded synthetic profile, in whole Wh."""
    step = timedelta(seconds=interval_s)
    start = end - hours * HOUR - step
    register = RegisterSensor(ResidentialProfile(seed), start=start)
    out = []
    ts = start
    while ts < end:
        out.append((ts, round(register(ts).energy_kwh, 3)))
        ts += step
    return out


def expected_hourly(series: Sequence[tuple[datetime, float]]) -> dict[datetime, float]:
    out: dict[datetime, float] = {}
    for (_, before), (ts, after) in itertools.pairwise(series):
        hour = floor_time(ts, HOUR)
        out[hour] = out.get(hour, 0.0) + (after - before)
    return out


@dataclass(frozen=True, slots=True)
class HourCheck:
    hour: datetime
    sent: float
    stored: float | None
    quality: str | None
    tolerance: float = 1e-6

    @property
    def status(self) -> str:
        if self.stored is None:
            return "MISSING"
        if abs(self.stored - self.sent) > self.tolerance + 1e-9 * abs(self.sent):
            return "DIFFERENT"
        return "ok"


def compare(
    expected: Mapping[datetime, float], stored: Mapping[datetime, tuple[float, str]]
) -> list[HourCheck]:
    checks = []
    for hour in sorted(expected):
        energy, quality = stored.get(hour, (None, None))
        checks.append(HourCheck(hour, expected[hour], energy, quality))
    return checks


def report(checks: Sequence[HourCheck]) -> str:
    rows = [f"  {'hour (UTC)':<17} {'sent kWh':>12} {'stored kWh':>12}  {'quality':<10} result"]
    for c in checks:
        stored = "-" if c.stored is None else f"{c.stored:.6f}"
        rows.append(
            f"  {c.hour:%Y-%m-%d %H:%M} {c.sent:>12.6f} {stored:>12}  {c.quality or '-':<10} "
            f"{c.status}"
        )
    return "\n".join(rows)


def verdict(checks: Sequence[HourCheck]) -> tuple[bool, str]:
    missing = sum(c.status == "MISSING" for c in checks)
    different = sum(c.status == "DIFFERENT" for c in checks)
    if not missing and not different:
        return True, f"PASS: all {len(checks)} hours stored as sent"
    parts = [f"{n} {what}" for n, what in ((missing, "missing"), (different, "different")) if n]
    return False, f"FAIL: {' and '.join(parts)} of {len(checks)} hours"
