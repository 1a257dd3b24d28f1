"""The event loop ``ems-sim run`` (and bench/sim.py) drives its fleet on.

uvloop where it is installed - it comes with ``uvicorn[standard]``, which the portal depends
on, so it is there on every platform uvloop supports. A fleet is thousands of connections, and
every reading costs one write and one PUBACK read on its own socket: the selector loop spends
Python on each readiness event (the selector's key objects, a handle, the transport's read
method) where uvloop does the same in C. Without uvloop (another platform) the standard loop
runs the same code, only slower. ``--loop asyncio`` asks for the standard loop (to tell a loop
problem from ours).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
CHOICES: Final = ("auto", "uvloop", "asyncio")


class LoopError(RuntimeError):
    """The loop asked for is not available; the message says what to do."""


def loop_factory(choice: str = "auto") -> LoopFactory | None:
    """The loop ``choice`` names (``auto``: uvloop if installed); None: asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise LoopError(
                "--loop uvloop: uvloop is not installed (pip install uvloop), or use --loop auto"
            ) from None
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the loop ``choice`` names."""
    try:
        factory = loop_factory(choice)
    except LoopError:
        main.close()  # never awaited: say so quietly rather than with a RuntimeWarning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio", for the banner."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
