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


def _sim(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def progress_line(elapsed: float, sim_now: datetime, t: Totals) -> str:
    return (
        f"ems-sim [{elapsed:7.1f}s] sim={_sim(sim_now)} connected={t.connected}/{t.meters} "
        f"produced={t.produced} acked={t.acked} buffered={t.buffered} dropped={t.dropped} "
        f"reconnects={t.reconnects} missed={t.missed} refused={t.refused} unrouted={t.unrouted}"
    )


def summary(why: str, elapsed: float, t: Totals, f: FaultTotals | None) -> str:
    lines = [
        f"ems-sim: stopped ({why}) after {elapsed:.1f} s",
        f"  meters={t.meters} produced={t.produced} acked={t.acked} buffered={t.buffered} "
        f"dropped={t.dropped} reconnects={t.reconnects} missed={t.missed} resent={t.resent} "
        f"refused={t.refused} rejected={t.rejected} unrouted={t.unrouted}",
    ]
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
