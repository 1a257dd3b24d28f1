"""`ems up` watching its children: a lost replica is reported and the others carry on; the
last of its kind, or a child that has no replicas, stops the stack."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import cast

from ems.config import StackConfig
from ems.stack import Child, Stack


class FakeProc:
    def __init__(self, returncode: int | None = None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode


def stack_of(said: list[str], **exited: int) -> Stack:
    cfg = StackConfig(Path("/nowhere"), "127.0.0.1", 1, 2, 3, 4, replicas=2)
    stack = Stack(cfg, said.append)
    for name in ("hub-1", "hub-2", "portal-1", "portal-2", "nginx"):
        proc = cast(subprocess.Popen[bytes], FakeProc(exited.get(name.replace("-", "_"))))
        stack.children.append(Child(name, proc, Path(f"/logs/{name}.log")))
    return stack


def stop_after(polls: int) -> Callable[[], bool]:
    """Asked to stop after ``polls`` rounds of watching (0.2 s each)."""
    left = [polls]

    def stop_requested() -> bool:
        left[0] -= 1
        return left[0] < 0

    return stop_requested


def test_a_lost_replica_is_reported_once_and_the_stack_carries_on() -> None:
    said: list[str] = []
    stack = stack_of(said, portal_1=-15)
    assert stack.watch(stop_after(2)) is None
    assert said == [
        "ems: portal-1 exited with code -15 (log: /logs/portal-1.log) — portal-2 carrying on"
    ]


def test_the_last_replica_of_a_kind_or_a_single_child_stops_the_stack() -> None:
    said: list[str] = []
    stack = stack_of(said, hub_1=1)
    hub_2 = cast(FakeProc, stack.children[1].proc)
    rounds = [0]

    def then_hub_2_dies() -> bool:
        rounds[0] += 1
        if rounds[0] == 2:
            hub_2.returncode = 1
        return rounds[0] > 5

    assert stack.watch(then_hub_2_dies) == "hub-2 exited with code 1 (log: /logs/hub-2.log)"
    assert said == ["ems: hub-1 exited with code 1 (log: /logs/hub-1.log) — hub-2 carrying on"]
    proxy = stack_of([], nginx=1)
    assert proxy.watch(stop_after(2)) == "nginx exited with code 1 (log: /logs/nginx.log)"
