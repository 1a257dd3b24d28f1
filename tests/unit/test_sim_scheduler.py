"""The fleet's timer wheel: polls on time (never early), one tick per slot, the earliest
request wins. The loop's clock is pinned and moved by the test; no wall time."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from device_sim.scheduler import Scheduler

pytestmark = pytest.mark.unit


class PinnedLoop(asyncio.SelectorEventLoop):
    now = 100.0

    def time(self) -> float:
        return self.now


class Item:
    """Polled: logs (name, loop time) and asks for the next poll from ``then``."""

    def __init__(self, name: str, loop: PinnedLoop, log: list[tuple[str, float]]) -> None:
        self.name, self.loop, self.log = name, loop, log
        self.then: list[float] = []  # the answers of the next polls (then inf)

    def poll(self) -> float:
        self.log.append((self.name, self.loop.now))
        return self.then.pop(0) if self.then else math.inf


async def settle(check: Callable[[], bool] = lambda: False, turns: int = 50) -> None:
    """Let the loop run ``turns`` iterations (the pinned clock does not move meanwhile), or
    until ``check()``: bounded by loop turns, not by time."""
    for _ in range(turns):
        if check():
            return
        await asyncio.sleep(0)


def run(scenario: Callable[[PinnedLoop, Scheduler], Coroutine[Any, Any, None]]) -> None:
    loop = PinnedLoop()

    async def main() -> None:
        scheduler = Scheduler(loop, batch=3)
        runner = loop.create_task(scheduler.run())
        try:
            await scenario(loop, scheduler)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_meters_asking_for_the_same_slot_share_one_tick_and_are_never_polled_early() -> None:
    async def scenario(loop: PinnedLoop, scheduler: Scheduler) -> None:
        log: list[tuple[str, float]] = []
        items = [Item(f"m{i}", loop, log) for i in range(7)]
        for i, item in enumerate(items):
            # The same slot seen through each meter's own clock reads: sub-ms differences.
            scheduler.wake(item, 100.0005 + i * 1e-5)
            item.then = [101.0005 + i * 1e-5]
        assert scheduler.waiting_ticks() == 1
        loop.now = 100.0004  # before every request: nothing
        await settle()
        assert log == []
        loop.now = 100.001  # the tick (1 ms) they were rounded up to: all, in request order
        await settle(lambda: len(log) == 7)
        assert log == [(f"m{i}", 100.001) for i in range(7)]
        assert scheduler.waiting_ticks() == 1  # the next slot: again one tick for all seven
        loop.now = 101.001
        await settle(lambda: len(log) == 14)
        assert log[7:] == [(f"m{i}", 101.001) for i in range(7)]
        assert scheduler.pending() == 0
        assert scheduler.waiting_ticks() == 0

    run(scenario)


def test_only_the_earliest_request_of_an_item_counts() -> None:
    async def scenario(loop: PinnedLoop, scheduler: Scheduler) -> None:
        log: list[tuple[str, float]] = []
        item = Item("m", loop, log)
        scheduler.wake(item, 120.0)
        scheduler.wake(item, 110.0)  # earlier: replaces the request
        scheduler.wake(item, 130.0)  # later: ignored
        scheduler.wake(item, math.inf)  # nothing wanted: ignored
        assert scheduler.pending() == 1
        loop.now = 110.0
        await settle(lambda: len(log) == 1)
        loop.now = 200.0  # past the superseded 120 s and 130 s: no second poll
        await settle()
        assert log == [("m", 110.0)]
        assert scheduler.pending() == 0

    run(scenario)


def test_a_poll_asking_again_for_its_own_tick_is_polled_again_in_the_same_pass() -> None:
    async def scenario(loop: PinnedLoop, scheduler: Scheduler) -> None:
        log: list[tuple[str, float]] = []
        again, other = Item("again", loop, log), Item("other", loop, log)
        again.then = [105.0, 105.0]  # a timer that is due at once (a deadline just passed)
        scheduler.wake(again, 105.0)
        scheduler.wake(other, 105.0)
        loop.now = 105.0
        await settle(lambda: len(log) == 4)
        assert log == [("again", 105.0), ("other", 105.0), ("again", 105.0), ("again", 105.0)]

    run(scenario)


def test_a_request_made_while_asleep_wakes_the_scheduler_earlier() -> None:
    async def scenario(loop: PinnedLoop, scheduler: Scheduler) -> None:
        log: list[tuple[str, float]] = []
        late, early = Item("late", loop, log), Item("early", loop, log)
        scheduler.wake(late, 150.0)
        await settle()  # asleep until 150 s
        scheduler.wake(early, 101.0)  # e.g. a PUBACK set a sync timer
        loop.now = 101.0
        await settle(lambda: len(log) == 1)
        assert log == [("early", 101.0)]

    run(scenario)
