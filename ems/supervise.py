"""When `ems up` restarts a child that died, and when it gives up on one.

A child that exits by itself with an error, or is killed (a crash, the OOM killer's SIGKILL),
is restarted after a back-off (common.backoff) that doubles with each death in the last
``window_s`` seconds. ``max_deaths`` deaths within that window mean it will not stay up (a
broken configuration, a port taken by someone else): restarting it forever would only hide
that, so the stack stops.

A child that exits cleanly (code 0, or the SIGTERM/SIGINT a person sends with ``kill``) was
stopped on purpose and is not restarted — systemd's ``Restart=on-failure`` makes the same call.
"""

from __future__ import annotations

import random
import signal
from collections import deque
from dataclasses import dataclass, field

from common.backoff import BackoffPolicy

DELIBERATE_EXIT_CODES = frozenset({0, -signal.SIGTERM, -signal.SIGINT})


def deliberate(returncode: int) -> bool:
    """Did the child stop because it was asked to (rather than crash or get killed)?"""
    return returncode in DELIBERATE_EXIT_CODES


# No jitter: one machine restarts one child, there is no herd to spread, and the delay the
# operator is told ("restarting it in 2 s") is the one that happens.
RESTART_BACKOFF = BackoffPolicy(initial_s=0.5, maximum_s=8.0, jitter=0.0)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_deaths: int = 5
    window_s: float = 60.0
    backoff: BackoffPolicy = RESTART_BACKOFF


@dataclass(slots=True)
class Restarts:
    """One child's recent deaths and how often it has been restarted."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    deaths: deque[float] = field(default_factory=deque)
    count: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def died(self, now: float) -> float | None:
        """Record a death at ``now`` (monotonic seconds): the delay before the restart, or
        None when the child has died ``max_deaths`` times within the window (give up)."""
        self.deaths.append(now)
        while self.deaths and self.deaths[0] <= now - self.policy.window_s:
            self.deaths.popleft()
        recent = len(self.deaths)
        if recent >= self.policy.max_deaths:
            return None
        # The attempt is the count of recent deaths, not of all deaths: a child that has been
        # up for a window starts again from the shortest delay.
        return self.policy.backoff.delay(recent - 1, self.rng)

    def give_up_reason(self) -> str:
        return f"{len(self.deaths)} deaths within {self.policy.window_s:.0f} s"
