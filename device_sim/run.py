"""``ems-sim run``: start the fleet, report progress, stop cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import math
import signal
from datetime import UTC, datetime, timedelta
from typing import TextIO

from device_sim.eventloop import loop_name
from device_sim.fleet import Fleet
from device_sim.plan import RunPlan
from device_sim.progress import (
    PaceTracker,
    Totals,
    connection_problem,
    meter_table,
    pace_warning,
    progress_line,
    summary,
)

MAX_FUTURE = timedelta(minutes=5)  # the hub rejects readings further ahead than this


def banner(plan: RunPlan, loop: str = "asyncio") -> str:
    b = plan.broker
    intervals = sorted({m.interval_s for m in plan.meters})
    formats = "/".join(sorted({m.format for m in plan.meters}))
    sources = "/".join(sorted({m.source for m in plan.meters}))
    where = plan.state_dir if plan.state_dir is not None else "memory (not kept)"
    return (
        f"ems-sim: {len(plan.meters)} meter(s) -> {b.host}:{b.port}{' (TLS)' if b.tls else ''}\n"
        f"  simulated time from {plan.start.isoformat()} at x{plan.speed:g}; "
        f"interval {'/'.join(map(str, intervals))} s; format {formats}; source {sources}\n"
        f"  buffers in {where}; faults: {len(plan.faults)}; progress every {plan.progress_s:g} s; "
        f"event loop {loop}"
    )


async def run(plan: RunPlan, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why = ["--duration reached"]

    def on_signal(name: str) -> None:
        why[0] = name
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    print(banner(plan, loop_name(loop)), file=out, flush=True)
    fleet = Fleet(plan)
    started = loop.time()
    end = started + plan.duration_s if plan.duration_s is not None else math.inf
    warned = False
    problems: set[str] = set()
    # Schedule keeping: per progress line, and over the whole run for the summary.
    tracker, overall, worst_lag = (
        PaceTracker(started, Totals()),
        PaceTracker(started, Totals()),
        0.0,
    )
    end_pace = None
    try:
        fleet.start()
        while not stop.is_set() and loop.time() < end:
            try:
                async with asyncio.timeout(min(plan.progress_s, end - loop.time())):
                    await stop.wait()
            except TimeoutError:
                pass
            now = fleet.clock.now()
            t, lag = fleet.totals(), fleet.take_lag()
            worst_lag = max(worst_lag, lag)
            pace = tracker.sample(loop.time(), t, fleet.asked_per_s(), lag)
            print(progress_line(loop.time() - started, now, t, pace), file=out, flush=True)
            if (warning := pace_warning(pace)) is not None:
                print(warning, file=out, flush=True)
            problem = connection_problem([s.meter for s in fleet.meters])
            if problem is not None and problem not in problems:  # each distinct one once
                problems.add(problem)
                print(problem, file=out, flush=True)
            if not warned and now > datetime.now(UTC) + MAX_FUTURE:
                warned = True
                print(
                    "ems-sim: warning: simulated time is now ahead of the wall clock - the hub "
                    "rejects readings more than 5 minutes in the future (use an earlier --start "
                    "or a lower --speed)",
                    file=out,
                    flush=True,
                )
    finally:
        worst_lag = max(worst_lag, fleet.take_lag())
        end_pace = overall.sample(loop.time(), fleet.totals(), fleet.asked_per_s(), worst_lag)
        print("ems-sim: stopping: meters send their offline status...", file=out, flush=True)
        await fleet.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    t = fleet.totals()
    print(summary(why[0], loop.time() - started, t, fleet.fault_totals(), end_pace), file=out)
    if len(fleet.meters) <= 20:
        meters = [s.meter for s in fleet.meters]
        print(meter_table(meters, [s.plan.name for s in fleet.meters]), file=out)
    out.flush()
    return 1 if t.refused else 0
