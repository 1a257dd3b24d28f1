"""Reconnect delays: exponential growth, a ceiling, and random jitter.

Jitter matters for fleets: after a broker restart every meter reconnects at once, and without
it they would keep retrying in lock-step. Each delay is drawn from
``[d * (1 - jitter), d]`` where ``d = min(maximum, initial * factor ** attempt)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial_s: float = 1.0
    maximum_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.maximum_s:
            raise ValueError("backoff needs 0 < initial_s <= maximum_s")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be in [0, 1]")


class Backoff:
    """The delays of one meter's consecutive failed attempts; ``reset()`` after a success."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        p = self.policy
        ceiling = p.initial_s * p.factor ** min(self._attempt, 64)
        delay = min(p.maximum_s, ceiling)
        self._attempt += 1
        return delay * (1.0 - p.jitter * self._rng.random())

    def reset(self) -> None:
        self._attempt = 0
