"""ems-sim says when it cannot keep its schedule, and why (pinned clocks, no broker)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime

from device_sim.progress import Pace, PaceTracker, Totals, pace_warning, progress_line, summary
from device_sim.scheduler import Scheduler

SIM_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def pace(**changes: object) -> Pace:
    kept = Pace(
        seconds=5.0,
        asked_per_s=10_000.0,
        produced_per_s=10_000.0,
        missed=0,
        lag_s=0.004,
        window_full=0,
        meters=10_000,
    )
    return replace(kept, **changes)  # type: ignore[arg-type]


def test_the_tracker_reports_the_rate_and_the_slots_missed_per_stretch() -> None:
    tracker = PaceTracker(100.0, Totals(produced=0, missed=0))
    first = tracker.sample(105.0, Totals(produced=30_000, missed=7), 10_000.0, 0.25)
    second = tracker.sample(110.0, Totals(produced=80_000, missed=7), 10_000.0, 0.01)
    assert (first.seconds, first.produced_per_s, first.missed) == (5.0, 6_000.0, 7)
    assert (second.produced_per_s, second.missed, second.lag_s) == (10_000.0, 0, 0.01)


def test_a_fleet_keeping_its_schedule_gets_no_warning() -> None:
    assert pace_warning(pace()) is None
    assert pace_warning(pace(produced_per_s=9_900.0)) is None  # within the slack
    # A stretch shorter than the interval: nothing produced is on time, not behind.
    slow = pace(asked_per_s=1 / 600, produced_per_s=0.0, meters=1)
    assert pace_warning(slow) is None
    # Every meter one reading short is the stretch cutting through a slot, not lateness.
    assert pace_warning(pace(produced_per_s=8_000.0)) is None


def test_falling_behind_with_a_busy_loop_is_named_cpu_bound_with_the_lag() -> None:
    warning = pace_warning(pace(produced_per_s=2_276.0, missed=38_620, lag_s=1.25))
    assert warning is not None
    assert warning.startswith("ems-sim: WARNING: not keeping the schedule")
    assert "produced 2,276/s of 10,000/s asked" in warning
    assert "38620 reading slots missed in the last 5 s" in warning
    assert "CPU-bound: loop lag 1250 ms" in warning
    assert "back-pressure" not in warning


def test_full_in_flight_windows_are_named_broker_back_pressure() -> None:
    warning = pace_warning(pace(window_full=420))
    assert warning is not None
    assert "broker back-pressure: in-flight window full on 420 of 10000 meters" in warning
    assert "CPU-bound" not in warning  # readings are still taken on time


def test_both_causes_at_once_are_both_named() -> None:
    warning = pace_warning(pace(produced_per_s=5_000.0, missed=10, lag_s=0.3, window_full=9))
    assert warning is not None
    assert "CPU-bound: loop lag 300 ms" in warning and "window full on 9 of" in warning


def test_the_progress_line_and_the_summary_show_produced_against_asked() -> None:
    behind = pace(produced_per_s=2_276.0, missed=38_620, lag_s=1.25, seconds=30.0)
    line = progress_line(12.0, SIM_NOW, Totals(meters=3, produced=36), behind)
    assert line.endswith("rate=2276/10000/s lag=1250ms")
    assert "produced=36 " in line  # the existing keys are unchanged for scripts
    text = summary("--duration reached", 30.0, Totals(meters=3), None, behind)
    assert "readings: produced 2,276/s of 10,000/s asked over 30 s; worst loop lag 1250 ms" in text
    assert "WARNING: not keeping the schedule" in text
    assert "WARNING" not in summary("SIGINT", 30.0, Totals(meters=3), None, pace())


class Item:
    def __init__(self) -> None:
        self.polled = asyncio.Event()

    def poll(self) -> float:
        self.polled.set()
        return float("inf")


def test_the_scheduler_measures_how_late_a_poll_ran() -> None:
    class PinnedLoop(asyncio.SelectorEventLoop):
        now = 50.0

        def time(self) -> float:
            return self.now

    async def scenario(loop: PinnedLoop) -> float:
        scheduler = Scheduler(loop)
        item = Item()
        scheduler.wake(item, 49.75)  # due 250 ms before the loop gets to it
        runner = loop.create_task(scheduler.run())
        await item.polled.wait()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        lag = scheduler.take_lag()
        assert scheduler.take_lag() == 0.0  # measuring starts again
        return lag

    loop = PinnedLoop()
    try:
        assert loop.run_until_complete(scenario(loop)) == 0.25
    finally:
        loop.close()
