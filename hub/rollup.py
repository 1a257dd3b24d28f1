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
    # The newest reading quarantined in this recompute (not only among the new ones).
    quarantined_through: datetime | None = None
    # A cumulative meter's last accepted reading after the recompute (EnergyResult.reference):
    # the running totals (hub.running) extend from it.
    reference: MeterReading | None = None


class NeedLongerHistory(Exception):
    """The loaded suffix does not reach back to a safe anchor; load the whole series."""


def cumulative_rewrite(
    device_id: UUID,
    series: Sequence[MeterReading],
    first_new: datetime,
    *,
    rated_power_w: float | None,
    starts_at_first_reading: bool,
    quarantined_through: datetime | None = None,
) -> Rewrite:
    """``series``: a sorted suffix of the device's readings that includes the new ones.

    The incremental anchor is exact unless a reading between the anchor's predecessor and the
    change was quarantined (energy.py, "Convergence"): the reading after it is measured against
    an older reference, whose pair may book into hours before the anchor's. So when the newest
    quarantined reading (``quarantined_through``, kept by the rollup store) is inside the
    loaded suffix, the whole series is recomputed — rare, and exact.
    """
    first_changed = next(i for i, r in enumerate(series) if r.ts >= first_new)
    if (
        rated_power_w is not None
        and quarantined_through is not None
        and quarantined_through >= series[0].ts
    ):
        if not starts_at_first_reading:
            raise NeedLongerHistory
        anchor, from_hour = 0, hour_floor(series[0].ts)
    else:
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
    through = max((i.reading.ts for i in result.implausible), default=None)
    return Rewrite(device_id, from_hour, rows, implausible, through, result.reference)


def interval_power_w(energy_kwh: float, interval_s: float) -> float:
    """The power an interval meter's reading implies over its reading interval."""
    return energy_kwh * 1000.0 * 3600.0 / interval_s


def interval_rewrite(
    device_id: UUID,
    series: Sequence[MeterReading],
    first_new: datetime,
    *,
    power_limit_w: float | None = None,
    interval_s: float = 600.0,
) -> Rewrite:
    """An interval meter's readings are each the energy of their interval: sum by hour.

    ``series`` holds every reading from ``hour_floor(first_new)`` on. With ``power_limit_w``, a
    reading whose energy over the meter's reading interval (``interval_s``) implies more power
    is quarantined like a cumulative meter's implausible increase: counted nowhere.
    """
    from_hour = hour_floor(first_new)
    totals: dict[datetime, tuple[float, int]] = {}
    implausible: list[Implausible] = []
    for r in series:
        if r.ts < from_hour:
            continue
        power = interval_power_w(r.energy_kwh, interval_s)
        if power_limit_w is not None and power > power_limit_w:
            implausible.append(Implausible(r, power))
            continue
        hour = hour_floor(r.ts)
        energy, count = totals.get(hour, (0.0, 0))
        totals[hour] = (energy + r.energy_kwh, count + 1)
    rows = [
        HourRow(hour, energy, Quality.MEASURED.value, count)
        for hour, (energy, count) in sorted(totals.items())
    ]
    return Rewrite(device_id, from_hour, rows, implausible)
