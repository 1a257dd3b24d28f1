"""Alert rules over a device's recomputed hours. Pure: no I/O, no clock of its own.

* Hourly limit: an hour whose energy is above ``max_hourly_kwh`` has an alert; one that falls
  back to or under it (late data) has its alert retracted. An hour that had closed more than
  ``LATE_GRACE`` before the evaluation is "late" when its alert is raised (a reading from
  10:59:58 rolled up at 11:00:01 is on time).
* Early warning: in the current hour, still under the limit, the energy projected to the end
  of the hour at the rate so far (from the hour's start to its latest reading, once at least
  ``MIN_ELAPSED`` of it has passed) is above the limit.

``evaluate`` judges the hours a rollup rewrote; ``at_commit`` the one hour a running total
(hub.running) reached as its reading committed, by the same rules, raising only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contract.enums import HourlyAlertKind
from hub.energy import HOUR, hour_floor
from hub.rollup import HourRow

MIN_ELAPSED = timedelta(minutes=5)
LATE_GRACE = timedelta(minutes=1)

DecisionKind = Literal[HourlyAlertKind, "retract"]
"""An hourly alert to raise or update, or the hour's alert to retract."""


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    hour: datetime
    value_kwh: float
    projected_kwh: float | None = None
    late: bool = False


def projected(energy_kwh: float, hour: datetime, latest: datetime) -> float | None:
    elapsed = latest - hour
    if elapsed < MIN_ELAPSED or elapsed > HOUR:
        return None
    return energy_kwh * (HOUR / elapsed)


def evaluate(
    limit_kwh: float, rows: Sequence[HourRow], latest: datetime | None, now: datetime
) -> list[Decision]:
    """Decisions for the hours in ``rows`` (the hours a rollup just rewrote)."""
    current = hour_floor(now)
    out: list[Decision] = []
    for row in rows:
        if row.hour > current:
            continue  # readings are never accepted that far ahead; nothing to alert on
        if row.energy_kwh > limit_kwh:
            late = row.hour + HOUR + LATE_GRACE < now
            out.append(Decision("hourly_limit", row.hour, row.energy_kwh, late=late))
            continue
        out.append(Decision("retract", row.hour, row.energy_kwh))
        if row.hour == current and latest is not None and hour_floor(latest) == current:
            p = projected(row.energy_kwh, row.hour, latest)
            if p is not None and p > limit_kwh:
                out.append(Decision("early_warning", row.hour, row.energy_kwh, projected_kwh=p))
    return out


def at_commit(
    limit_kwh: float, hour: datetime, energy_kwh: float, latest: datetime, now: datetime
) -> Decision | None:
    """What a running total decides as its reading commits (``hub.running``): the rules of
    ``evaluate`` for that one hour, raising only. Retracting, and an alert for an hour already
    closed (late), stay with the rollup, which sees the whole hour."""
    row = HourRow(hour, energy_kwh, "", 0)
    for d in evaluate(limit_kwh, [row], latest, now):
        if d.kind != "retract" and not d.late:
            return d
    return None
