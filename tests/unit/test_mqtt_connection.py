"""hub.mqtt.connection's reconnect timings: the one back-off (common.backoff), the old values."""

from __future__ import annotations

import random

import pytest

from common.backoff import Backoff
from hub.mqtt.connection import RECONNECT_BACKOFF, ConnectionSettings


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def delays(draw: float, n: int = 8) -> list[float]:
    backoff = Backoff(RECONNECT_BACKOFF, FixedRandom(draw))
    return [backoff.next_delay() for _ in range(n)]


def test_delays_double_from_one_second_to_thirty() -> None:
    assert delays(0.0) == [1, 2, 4, 8, 16, 30, 30, 30]  # the least jitter: the ceiling


def test_full_jitter_draws_anywhere_below_the_ceiling() -> None:
    # Hubs that lost the same broker spread over the whole interval, down to almost nothing.
    assert delays(0.75) == [0.25, 0.5, 1, 2, 4, 7.5, 7.5, 7.5]
    assert max(delays(0.999_999)) == pytest.approx(0, abs=1e-4)


def test_a_connection_reconnects_with_that_policy_unless_told_otherwise() -> None:
    settings = ConnectionSettings("127.0.0.1", 1883, "hub", "hub")
    assert settings.backoff is RECONNECT_BACKOFF
