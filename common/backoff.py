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

    def ceiling(self, attempt: int) -> float:
        """The delay before retry ``attempt`` (0 for the first) before jitter."""
        return min(self.maximum_s, self.initial_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Retry ``attempt``'s delay, drawn from ``[ceiling * (1 - jitter), ceiling]``."""
        return self.ceiling(attempt) * (1.0 - self.jitter * rng.random())


class Backoff:
    """The delays of one client's consecutive failed attempts; ``reset()`` after a success.

    Pass ``rng`` for repeatable delays (a simulated fleet, a test); without one, each Backoff
    draws from its own generator, so two clients never share a sequence.
    """

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        # Jitter spreads retries; it is not a secret, so a non-cryptographic generator will do.
        self._rng = random.Random() if rng is None else rng  # noqa: S311
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        delay = self.policy.delay(self._attempt, self._rng)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self._attempt = 0
