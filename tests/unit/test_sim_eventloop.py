"""ems-sim's event loop: uvloop when installed (it comes with uvicorn[standard]), else asyncio's;
``--loop`` chooses."""

from __future__ import annotations

import asyncio
import sys

import pytest

from device_sim import eventloop
from device_sim.eventloop import LoopError, loop_factory, loop_name

pytestmark = pytest.mark.unit


async def running_loop() -> str:
    return loop_name(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_which_comes_with_uvicorn_standard() -> None:
    assert eventloop.run(running_loop()) == "uvloop"
    assert eventloop.run(running_loop(), "uvloop") == "uvloop"


def test_asyncio_runs_on_the_standard_loop() -> None:
    assert loop_factory("asyncio") is None
    assert eventloop.run(running_loop(), "asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_asking_for_it_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert loop_factory("auto") is None
    assert eventloop.run(running_loop()) == "asyncio"
    with pytest.raises(LoopError, match="uvloop is not installed"):
        eventloop.run(running_loop(), "uvloop")
