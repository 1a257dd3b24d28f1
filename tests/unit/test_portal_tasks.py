"""Background tasks stop even when a cancellation is lost on the way."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from portal.tasks import cancel_and_wait


async def supervisor_that_loses_a_cancellation(rounds: list[int], started: asyncio.Event) -> None:
    """Like a reconnect loop whose cancellation asyncio.wait_for swallowed (Python 3.11): the
    first CancelledError is taken for a failed attempt and the loop goes round again."""
    lost = False
    while True:
        rounds.append(1)
        started.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            if lost:
                raise
            lost = True


def test_a_task_that_survives_one_cancel_is_cancelled_again_until_it_ends() -> None:
    async def scenario() -> tuple[asyncio.Task[None], list[int]]:
        rounds: list[int] = []
        started = asyncio.Event()
        task = asyncio.create_task(supervisor_that_loses_a_cancellation(rounds, started))
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(cancel_and_wait(task), 5)
        return task, rounds

    task, rounds = asyncio.run(scenario())
    assert task.cancelled()
    assert len(rounds) == 2  # the lost cancellation cost one more round, not a hang


def test_a_task_that_never_stops_is_reported_after_the_patience(
    caplog: pytest.LogCaptureFixture,
) -> None:
    give_up = asyncio.Event()
    started = asyncio.Event()

    async def stubborn() -> None:
        while True:
            started.set()
            try:
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                if give_up.is_set():
                    raise

    async def scenario() -> None:
        task = asyncio.create_task(stubborn(), name="stubborn")
        await asyncio.wait_for(started.wait(), 5)
        await cancel_and_wait(task, patience_s=0.3)
        assert not task.done()  # returned after its patience instead of hanging
        give_up.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="portal"):
        asyncio.run(scenario())
    assert "stubborn" in caplog.text
