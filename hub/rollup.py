"""Which hourly rows to rewrite after new readings arrived for a device. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from hub.energy import (
    Implausible,
    MeterReading,
    Quality,
    compute_hourly,
    hour_floor,
    recompute_anchor_index,
)


@dataclass(frozen=True, slots=True)
class HourRow:
    hour: datetime
    energy_kwh: float
    quality: str
    readings: int


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Replace every stored hour >= ``from_hour`` of ``device_id`` with ``rows``."""

    device_id: UUID
    from_hour: datetime
    rows: list[HourRow]
    implausible: list[Implausible]


class NeedLongerHistory(Exception):
    """The loaded suffix does not reach back to a safe anchor; load the whole series."""


def cumulative_rewrite(
    device_id: UUID,
    series: Sequence[MeterReading],
    first_new: datetime,
    *,
    rated_power_w: float | None,
    starts_at_first_reading: bool,
) -> Rewrite:
    """``series``: a sorted suffix of the device's readings that includes the new ones."""
    first_changed = next(i for i, r in enumerate(series) if r.ts >= first_new)
    anchor, from_hour = recompute_anchor_index(series, first_changed)
    if anchor == 0 and not starts_at_first_reading:
        raise NeedLongerHistory
    result = compute_hourly(series[anchor:], rated_power_w=rated_power_w)
    rows = [
        HourRow(h.hour, h.energy_kwh, h.quality.value, h.readings)
        for hour, h in sorted(result.hours.items())
        if hour >= from_hour
    ]
    implausible = [i for i in result.implausible if i.reading.ts >= first_new]
    return Rewrite(device_id, from_hour, rows, implausible)


def interval_rewrite(
    device_id: UUID, series: Sequence[MeterReading], first_new: datetime
) -> Rewrite:
    """An interval meter's readings are each the energy of their interval: sum by hour.

    ``series`` holds every reading from ``hour_floor(first_new)`` on.
    """
    from_hour = hour_floor(first_new)
    totals: dict[datetime, tuple[float, int]] = {}
    for r in series:
        if r.ts < from_hour:
            continue
        hour = hour_floor(r.ts)
        energy, count = totals.get(hour, (0.0, 0))
        totals[hour] = (energy + r.energy_kwh, count + 1)
    rows = [
        HourRow(hour, energy, Quality.MEASURED.value, count)
        for hour, (energy, count) in sorted(totals.items())
    ]
    return Rewrite(device_id, from_hour, rows, [])
