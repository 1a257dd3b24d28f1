"""Hourly energy of a cumulative meter: the pure maths of ARCHITECTURE.md section 4.

Readings (strictly increasing, timezone-aware ``ts``) are walked in order against a reference:
the last *accepted* reading (the first reading is the baseline and is accepted with no energy).

* ``r >= ref``: the increase ``r - ref`` is booked over the pair ``(ref.ts, r.ts)``; accept r.
* ``r < ref`` and the next reading is ``>= ref`` (or there is no next reading yet): a glitch.
  r is ignored (0 energy, not accepted) and its hour is flagged ``glitch``; the next reading is
  then measured against the pre-drop reference. A drop at the tail is provisional and becomes a
  reset or a confirmed glitch when the series is recomputed with the following reading.
* ``r < ref`` and the next reading is ``< ref`` too: a reset (new meter epoch). r itself is the
  energy since the reset, booked over ``(ref.ts, r.ts)``; accept r; its hour is flagged ``reset``.
* With ``rated_power_w``, a booked amount whose average power over its pair is strictly above the
  rating is quarantined: reported in ``implausible``, not accepted, counted nowhere. (A drop is
  classified by the raw next reading, even if that reading is itself quarantined later.)

Booking a pair ``(a, b)``: if ``b - a <= 1 h`` the whole amount goes to ``hour_floor(b)``
(``measured``). A longer pair is a gap: the amount is spread linearly over the hours that the
interval ``[a, b)`` overlaps, in proportion to the overlap, and those hours are ``estimated``
(a reading exactly on an hour boundary gives that hour no share). The last share is the amount
minus the others, so each pair's energy is conserved. Within an hour the worst flag wins:
reset > glitch > estimated > measured. ``readings`` counts accepted and glitch readings.

Convergence (what lets the hub recompute incrementally). The walk is a deterministic state
machine whose state is the reference; step i reads reading i and, for a drop, reading i + 1,
and books nothing before the hour of its reference. Without quarantines two facts need only
raw values: (A) a reading not below its predecessor is accepted (the predecessor is either the
reference or a glitch that the reading recovered from); (B) the reading after a glitch is above
it, so a reading below its predecessor has an accepted predecessor. ``recompute_anchor_index``
takes the first step whose outcome can change (the changed reading's, or the drop's just
before it, which looks ahead at it); by A and B that step's reference is the reading before it,
and the returned hour is that reading's hour. The anchor is the last reading before that hour
that is not below its predecessor (accepted by A), or the first reading. Then:

1. ``compute_hourly(readings[anchor:])`` equals ``compute_hourly(readings)`` on every hour
   ``>= hour``, exactly (after the anchor both walks are in the same state; nothing before or
   at the anchor books into an hour after the anchor's);
2. every hour ``< hour`` is the same as before ``readings[first_changed:]`` changed.

Both hold for any series without ``rated_power_w``; with it they hold while none of the
readings ``anchor - 1`` .. ``first_changed - 1`` is quarantined (that would break fact A). Only raw
drops make the anchor reach further back: with no two drops in a row it is at most one reading
before the last reading preceding ``hour``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One stored reading of a cumulative meter."""

    ts: datetime
    energy_kwh: float

    def __post_init__(self) -> None:
        if self.ts.utcoffset() is None:
            raise ValueError(f"reading time {self.ts} has no time zone; give it in UTC")
        if not math.isfinite(self.energy_kwh) or self.energy_kwh < 0:
            raise ValueError(f"cumulative register {self.energy_kwh!r} kWh is not a number >= 0")


class Quality(StrEnum):
    MEASURED = "measured"
    ESTIMATED = "estimated"
    GLITCH = "glitch"
    RESET = "reset"

    @property
    def severity(self) -> int:
        """Rank for combining flags within one hour; the highest wins."""
        return _SEVERITY[self]


_SEVERITY = {quality: rank for rank, quality in enumerate(Quality)}


@dataclass(frozen=True, slots=True)
class HourEnergy:
    hour: datetime
    energy_kwh: float
    quality: Quality
    readings: int


@dataclass(frozen=True, slots=True)
class Implausible:
    reading: MeterReading
    implied_power_w: float


@dataclass(frozen=True, slots=True)
class EnergyResult:
    hours: dict[datetime, HourEnergy]
    implausible: list[Implausible]
    # The walk's final reference: the last accepted reading (None for no readings). The
    # running totals (hub.running) extend from it as long as readings keep arriving in order.
    reference: MeterReading | None = None


def hour_floor(ts: datetime) -> datetime:
    """Start of the UTC clock hour containing ``ts``."""
    if ts.tzinfo is UTC:  # the hot path: the hub's readings are all in UTC already
        return ts.replace(minute=0, second=0, microsecond=0)
    if ts.utcoffset() is None:
        raise ValueError(f"time {ts} has no time zone; give it in UTC")
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class _Ledger:
    """Per-hour accumulators while walking a series."""

    def __init__(self) -> None:
        self._energy: dict[datetime, float] = {}
        self._quality: dict[datetime, Quality] = {}
        self._count: dict[datetime, int] = {}

    def add(self, hour: datetime, quality: Quality, *, energy: float = 0.0, count: int = 0) -> None:
        self._energy[hour] = self._energy.get(hour, 0.0) + energy
        self._count[hour] = self._count.get(hour, 0) + count
        known = self._quality.get(hour, Quality.MEASURED)
        if _SEVERITY[quality] > _SEVERITY[known] or hour not in self._quality:
            self._quality[hour] = quality

    def book(self, start: datetime, end: datetime, amount: float) -> None:
        shares = pair_shares(start, end, amount)
        quality = Quality.MEASURED if len(shares) == 1 else Quality.ESTIMATED
        for h, share in shares:
            self.add(h, quality, energy=share)

    def hours(self) -> dict[datetime, HourEnergy]:
        return {
            h: HourEnergy(h, self._energy[h], self._quality[h], self._count[h])
            for h in sorted(self._energy)
        }


def pair_shares(start: datetime, end: datetime, amount: float) -> list[tuple[datetime, float]]:
    """How a pair ``(start, end)`` books ``amount`` (the module doc): one ``measured`` share in
    ``hour_floor(end)`` for a pair of at most an hour, otherwise ``estimated`` shares over the
    hours ``[start, end)`` overlaps, the last one the rest (the pair's energy is conserved)."""
    if end - start <= HOUR:
        return [(hour_floor(end), amount)]
    span = end - start
    hours: list[datetime] = []
    hour = hour_floor(start)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    shares = [amount * ((min(end, h + HOUR) - max(start, h)) / span) for h in hours[:-1]]
    shares.append(amount - math.fsum(shares))
    return list(zip(hours, shares, strict=True))


def implied_power_w(amount_kwh: float, start: datetime, end: datetime) -> float:
    """The average power of ``amount_kwh`` consumed between ``start`` and ``end``."""
    return amount_kwh * 1000.0 / ((end - start) / HOUR)


def _check_sorted(readings: Sequence[MeterReading]) -> None:
    for before, after in pairwise(readings):
        if after.ts <= before.ts:
            raise ValueError(
                f"readings must be sorted by time with unique times: {after.ts} follows {before.ts}"
            )


def compute_hourly(
    readings: Sequence[MeterReading], *, rated_power_w: float | None = None
) -> EnergyResult:
    """Hourly energy, quality and reading counts of one meter's series (see the module doc)."""
    _check_sorted(readings)
    if rated_power_w is not None and not (math.isfinite(rated_power_w) and rated_power_w > 0):
        raise ValueError(f"rated power {rated_power_w!r} W must be a number > 0")
    ledger = _Ledger()
    implausible: list[Implausible] = []
    if not readings:
        return EnergyResult({}, implausible)
    ref = readings[0]
    ledger.add(hour_floor(ref.ts), Quality.MEASURED, count=1)
    for i, reading in enumerate(readings[1:], start=1):
        if reading.energy_kwh >= ref.energy_kwh:
            amount, quality = reading.energy_kwh - ref.energy_kwh, Quality.MEASURED
        elif i + 1 == len(readings) or readings[i + 1].energy_kwh >= ref.energy_kwh:
            ledger.add(hour_floor(reading.ts), Quality.GLITCH, count=1)
            continue
        else:
            amount, quality = reading.energy_kwh, Quality.RESET
        power = implied_power_w(amount, ref.ts, reading.ts)
        if rated_power_w is not None and power > rated_power_w:
            implausible.append(Implausible(reading, power))
            continue
        ledger.book(ref.ts, reading.ts, amount)
        ledger.add(hour_floor(reading.ts), quality, count=1)
        ref = reading
    return EnergyResult(ledger.hours(), implausible, ref)


def recompute_anchor_index(
    readings: Sequence[MeterReading], first_changed: int
) -> tuple[int, datetime]:
    """Where to restart after ``readings[first_changed:]`` changed: ``(anchor, first hour)``.

    Recompute ``compute_hourly(readings[anchor:])`` and replace the stored hours ``>= hour``;
    hours before it are unchanged (see the module doc for the guarantee and its proof).
    ``readings`` may be a suffix of the meter's series: an anchor > 0 is then the same as for
    the whole series; an anchor of 0 is right only if ``readings[0]`` is the meter's first
    reading, otherwise pass a longer suffix.
    """
    if not 0 <= first_changed < len(readings):
        raise ValueError(f"first_changed {first_changed} is outside 0..{len(readings) - 1}")
    _check_sorted(readings)

    def below_predecessor(i: int) -> bool:  # may be a glitch or a reset; otherwise accepted
        return i > 0 and readings[i].energy_kwh < readings[i - 1].energy_kwh

    # A drop just before the change is classified by looking at the changed reading, so the
    # first step whose outcome can change is that drop's, or else the changed reading's.
    step = first_changed - 1 if below_predecessor(first_changed - 1) else first_changed
    if step == 0:
        return 0, hour_floor(readings[0].ts)
    # The step's reference is the reading before it (facts A and B), and it books nothing
    # before that reference's hour.
    hour = hour_floor(readings[step - 1].ts)
    for anchor in range(step - 1, 0, -1):
        if readings[anchor].ts < hour and not below_predecessor(anchor):
            return anchor, hour
    return 0, hour
