"""What a fleet is doing, in one line every few seconds and a summary at the end.

The progress line is ``key=value`` pairs so that people can read it and scripts can parse it:
``ems-sim [  12.0s] sim=2026-11-25T12:00Z connected=3/3 produced=36 acked=36 buffered=0 ...``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from device_sim.delivery_faults import FaultyClient
from firmware_stub.meter import Meter
from firmware_stub.model import State


@dataclass(slots=True)
class Totals:
    meters: int = 0
    connected: int = 0
    produced: int = 0
    acked: int = 0
    buffered: int = 0
    dropped: int = 0
    reconnects: int = 0
    missed: int = 0
    refused: int = 0
    rejected: int = 0
    unrouted: int = 0
    resent: int = 0
    window_full: int = 0  # meters whose in-flight window is full (waiting for PUBACKs)


@dataclass(slots=True)
class FaultTotals:
    outages: int = 0
    duplicates: int = 0
    reordered: int = 0
    malformed: int = 0


def totals(meters: Sequence[Meter]) -> Totals:
    t = Totals(meters=len(meters))
    for m in meters:
        s = m.stats
        t.connected += m.state is State.CONNECTED
        t.refused += s.refused > 0
        t.produced += s.produced
        t.acked += s.acked
        t.buffered += m.buffer.pending_count
        t.dropped += m.buffer.dropped
        t.reconnects += max(s.connects - 1, 0)
        t.missed += s.missed_slots
        t.rejected += s.rejected
        t.unrouted += s.unrouted
        t.resent += s.resent
        t.window_full += m.window_full
    return t


def connection_problem(meters: Sequence[Meter]) -> str | None:
    """The most common reason meters are not connected, as one line (None if all are)."""
    reasons = Counter(
        m.last_error or "connecting"
        for m in meters
        if m.state is not State.CONNECTED and m.state is not State.STOPPED
    )
    if not reasons:
        return None
    reason, count = reasons.most_common(1)[0]
    return f"ems-sim: {count} of {len(meters)} meters not connected: {reason}"


def fault_totals(clients: Sequence[FaultyClient]) -> FaultTotals:
    f = FaultTotals()
    for c in clients:
        for field in fields(FaultTotals):
            name = field.name
            setattr(f, name, getattr(f, name) + getattr(c.injected, name))
    return f


# Worse than this and the fleet is CPU-bound: readings are polled this late (the loop is busy).
LAG_LIMIT_S = 0.1
# Producing less than this share of the asked rate (and more than one reading per meter short)
# counts as not keeping the schedule.
RATE_SLACK = 0.98


@dataclass(frozen=True, slots=True)
class Pace:
    """Whether the fleet keeps its schedule, over one stretch of time."""

    seconds: float
    asked_per_s: float
    produced_per_s: float
    missed: int  # reading slots skipped (a meter polled more than one interval late)
    lag_s: float  # the worst poll lag (Scheduler.take_lag)
    window_full: int  # meters waiting for PUBACKs at the end of the stretch
    meters: int


class PaceTracker:
    """Turns the running totals into a ``Pace`` per stretch: call ``sample`` at each progress
    line (with the loop time, so a test can pin the clock)."""

    def __init__(self, now: float, t: Totals) -> None:
        self._since, self._produced, self._missed = now, t.produced, t.missed

    def sample(self, now: float, t: Totals, asked_per_s: float, lag_s: float) -> Pace:
        seconds = max(now - self._since, 1e-9)
        pace = Pace(
            seconds=seconds,
            asked_per_s=asked_per_s,
            produced_per_s=(t.produced - self._produced) / seconds,
            missed=t.missed - self._missed,
            lag_s=lag_s,
            window_full=t.window_full,
            meters=t.meters,
        )
        self._since, self._produced, self._missed = now, t.produced, t.missed
        return pace


def pace_warning(p: Pace) -> str | None:
    """One WARNING line when the fleet does not keep its schedule, naming the cause (None when
    it does)."""
    # A stretch cuts through the slots: each meter may be one reading short without being late.
    expected = p.asked_per_s * p.seconds
    shortfall = expected - p.produced_per_s * p.seconds
    behind = p.missed > 0 or shortfall > max(p.meters, (1 - RATE_SLACK) * expected)
    pressed = p.window_full > 0
    if not (behind or pressed):
        return None
    causes = []
    if p.lag_s >= LAG_LIMIT_S or (behind and not pressed):
        causes.append(
            f"CPU-bound: loop lag {p.lag_s * 1000:.0f} ms (readings are taken late; run fewer "
            "meters per process or a longer interval)"
        )
    if pressed:
        causes.append(
            f"broker back-pressure: in-flight window full on {p.window_full} of {p.meters} "
            "meters (readings wait for PUBACKs)"
        )
    return (
        f"ems-sim: WARNING: not keeping the schedule: produced {p.produced_per_s:,.0f}/s of "
        f"{p.asked_per_s:,.0f}/s asked, {p.missed} reading slots missed in the last "
        f"{p.seconds:.0f} s; " + "; ".join(causes)
    )


def _sim(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def progress_line(elapsed: float, sim_now: datetime, t: Totals, pace: Pace | None = None) -> str:
    line = (
        f"ems-sim [{elapsed:7.1f}s] sim={_sim(sim_now)} connected={t.connected}/{t.meters} "
        f"produced={t.produced} acked={t.acked} buffered={t.buffered} dropped={t.dropped} "
        f"reconnects={t.reconnects} missed={t.missed} refused={t.refused} unrouted={t.unrouted}"
    )
    if pace is not None:
        rate = f"{pace.produced_per_s:.0f}/{pace.asked_per_s:.0f}/s"
        line += f" rate={rate} lag={pace.lag_s * 1000:.0f}ms"
    return line


def summary(
    why: str, elapsed: float, t: Totals, f: FaultTotals | None, pace: Pace | None = None
) -> str:
    lines = [
        f"ems-sim: stopped ({why}) after {elapsed:.1f} s",
        f"  meters={t.meters} produced={t.produced} acked={t.acked} buffered={t.buffered} "
        f"dropped={t.dropped} reconnects={t.reconnects} missed={t.missed} resent={t.resent} "
        f"refused={t.refused} rejected={t.rejected} unrouted={t.unrouted}",
    ]
    if pace is not None:
        lines.append(
            f"  readings: produced {pace.produced_per_s:,.0f}/s of {pace.asked_per_s:,.0f}/s "
            f"asked over {pace.seconds:.0f} s; worst loop lag {pace.lag_s * 1000:.0f} ms"
        )
        if (warning := pace_warning(pace)) is not None:
            lines.append(warning)
    if f is not None:
        lines.append(
            f"  faults injected: outages={f.outages} duplicates={f.duplicates} "
            f"reordered={f.reordered} malformed={f.malformed}"
        )
    if t.buffered:
        lines.append(
            f"  {t.buffered} readings are still buffered; with a state directory they are "
            "sent on the next run"
        )
    return "\n".join(lines)


def meter_table(meters: Sequence[Meter], names: Sequence[str | None]) -> str:
    rows = [f"  {'device':<36}  {'state':<10} {'produced':>8} {'acked':>8} {'buffered':>8}  name"]
    for m, name in zip(meters, names, strict=True):
        rows.append(
            f"  {m.device_id!s:<36}  {m.state.value:<10} {m.stats.produced:>8} "
            f"{m.stats.acked:>8} {m.buffer.pending_count:>8}  {name or ''}"
        )
    return "\n".join(rows)
