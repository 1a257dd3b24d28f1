"""`ems up` watching its children: a crashed or killed child is restarted after a back-off and
counted, one that keeps dying stops the stack with a reason; a replica stopped on purpose is
reported and the others carry on, while the last of its kind, or a child that has no
replicas, stops the stack."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import cast

from common.backoff import BackoffPolicy
from ems.config import StackConfig
from ems.stack import Child, Stack
from ems.supervise import RestartPolicy, Restarts

# A millisecond: due by the next round of watching (0.2 s), as good as no wait.
NO_WAIT = RestartPolicy(max_deaths=3, window_s=60.0, backoff=BackoffPolicy(1e-3, 1e-3, jitter=0))


class FakeProc:
    def __init__(self, returncode: int | None = None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode


def popen(proc: FakeProc) -> subprocess.Popen[bytes]:
    return cast(subprocess.Popen[bytes], proc)


def stack_of(said: list[str], **exited: int) -> Stack:
    cfg = StackConfig(Path("/nowhere"), "127.0.0.1", 1, 2, 3, 4, replicas=2)
    stack = Stack(cfg, said.append)
    for name in ("hub-1", "hub-2", "portal-1", "portal-2", "nginx"):
        proc = popen(FakeProc(exited.get(name.replace("-", "_"))))
        stack.children.append(
            Child(
                name,
                proc,
                Path(f"/logs/{name}.log"),
                respawn=lambda: popen(FakeProc()),
                restarts=Restarts(NO_WAIT),
            )
        )
    return stack


def stop_after(polls: int) -> Callable[[], bool]:
    """Asked to stop after ``polls`` rounds of watching (0.2 s each)."""
    left = [polls]

    def stop_requested() -> bool:
        left[0] -= 1
        return left[0] < 0

    return stop_requested


def test_a_replica_stopped_on_purpose_is_reported_once_and_the_stack_carries_on() -> None:
    said: list[str] = []
    stack = stack_of(said, portal_1=-15)
    assert stack.watch(stop_after(2)) is None
    assert said == [
        "ems: portal-1 exited with code -15 (log: /logs/portal-1.log) — portal-2 carrying on"
    ]


def test_the_last_replica_of_a_kind_or_a_single_child_stopped_on_purpose_stops_the_stack() -> None:
    said: list[str] = []
    stack = stack_of(said, hub_1=0)
    hub_2 = cast(FakeProc, stack.children[1].proc)
    rounds = [0]

    def then_hub_2_stops() -> bool:
        rounds[0] += 1
        if rounds[0] == 2:
            hub_2.returncode = -15
        return rounds[0] > 5

    assert stack.watch(then_hub_2_stops) == "hub-2 exited with code -15 (log: /logs/hub-2.log)"
    assert said == ["ems: hub-1 exited with code 0 (log: /logs/hub-1.log) — hub-2 carrying on"]
    proxy = stack_of([], nginx=0)
    assert proxy.watch(stop_after(2)) == "nginx exited with code 0 (log: /logs/nginx.log)"


def test_a_killed_child_is_restarted_counted_and_reported_back_once_it_is_ready() -> None:
    said: list[str] = []
    stack = stack_of(said, hub_1=-9)
    ready = [False]
    stack.children[0].ready = lambda: ready[0]
    rounds = [0]

    def then_ready() -> bool:
        rounds[0] += 1
        ready[0] = rounds[0] > 3
        return rounds[0] > 6

    assert stack.watch(then_ready) is None
    hub_1 = stack.children[0]
    assert hub_1.proc.poll() is None  # a new process
    assert hub_1.restarts.count == 1
    assert said == [
        "ems: hub-1 exited with code -9 (log: /logs/hub-1.log) — restarting it in 0.001 s",
        "ems: restarted hub-1 (restart 1)",
        "ems: hub-1 is running again (restarts: 1)",
    ]


def test_a_child_that_keeps_dying_stops_the_stack_with_the_reason() -> None:
    said: list[str] = []
    stack = stack_of(said, portal_2=1)
    stack.children[3].respawn = lambda: popen(FakeProc(1))  # dies again at once, every time
    reason = stack.watch(stop_after(50))
    assert reason == (
        "portal-2 exited with code 1 (log: /logs/portal-2.log); portal-2 keeps dying"
        " (3 deaths within 60 s), giving up"
    )
    assert said.count("ems: restarted portal-2 (restart 1)") == 1
    assert "ems: restarted portal-2 (restart 2)" in said
    assert "ems: restarted portal-2 (restart 3)" not in said


def test_a_child_that_cannot_be_started_again_counts_as_dying_again() -> None:
    from ems.procs import StackError

    said: list[str] = []
    stack = stack_of(said, nginx=-9)

    def refuse() -> subprocess.Popen[bytes]:
        raise StackError("port 4 on 127.0.0.1 is already in use\n  more detail")

    stack.children[4].respawn = refuse
    reason = stack.watch(stop_after(50))
    assert reason == (
        "nginx did not start again (port 4 on 127.0.0.1 is already in use); nginx keeps dying"
        " (3 deaths within 60 s), giving up"
    )


def test_the_back_off_doubles_with_recent_deaths_and_forgets_old_ones() -> None:
    backoff = BackoffPolicy(initial_s=0.5, maximum_s=3, jitter=0)
    restarts = Restarts(RestartPolicy(max_deaths=5, window_s=60, backoff=backoff))
    assert [restarts.died(t) for t in (100.0, 101.0, 102.0, 103.0)] == [0.5, 1.0, 2.0, 3.0]
    # More than a minute later those deaths no longer count: the back-off starts over.
    assert restarts.died(170.0) == 0.5
    assert [restarts.died(t) for t in (171.0, 172.0, 173.0)] == [1.0, 2.0, 3.0]
    assert restarts.died(174.0) is None  # the fifth death within 60 s: give up
    assert restarts.give_up_reason() == "5 deaths within 60 s"
