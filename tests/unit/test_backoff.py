"""common.backoff: the one reconnect back-off — growth, ceiling, jitter range, reset."""

from __future__ import annotations

import random

import pytest

from common.backoff import Backoff, BackoffPolicy
from ems.supervise import RestartPolicy
from portal.reconnect import RECONNECT


def test_the_ceiling_doubles_up_to_the_maximum() -> None:
    policy = BackoffPolicy(initial_s=0.2, maximum_s=10.0, jitter=0.5)
    assert [policy.ceiling(n) for n in range(8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert policy.ceiling(10_000) == 10.0  # no overflow however long the outage


def test_each_delay_lies_in_its_jitter_band_and_reset_starts_over() -> None:
    policy = BackoffPolicy(initial_s=1.0, maximum_s=8.0, jitter=0.5)
    backoff = Backoff(policy, random.Random(7))
    for attempt in range(6):
        ceiling = policy.ceiling(attempt)
        assert ceiling * 0.5 <= backoff.next_delay() <= ceiling
    assert backoff.attempt == 6
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_a_seeded_backoff_repeats_and_an_unseeded_one_needs_no_generator() -> None:
    policy = BackoffPolicy(initial_s=1.0, maximum_s=60.0, jitter=1.0)
    first = Backoff(policy, random.Random(3))
    again = Backoff(policy, random.Random(3))
    assert [first.next_delay() for _ in range(5)] == [again.next_delay() for _ in range(5)]
    own = Backoff(policy)  # the portal's connections: no seed to pass around
    assert all(0.0 <= own.next_delay() <= policy.ceiling(n) for n in range(5))


def test_without_jitter_the_delay_is_the_ceiling() -> None:
    policy = BackoffPolicy(initial_s=0.5, maximum_s=8.0, jitter=0.0)
    assert [policy.delay(n, random.Random()) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]


@pytest.mark.parametrize(
    "bad",
    [
        {"initial_s": 0.0},
        {"initial_s": 5.0, "maximum_s": 1.0},
        {"factor": 0.5},
        {"jitter": 1.5},
    ],
)
def test_a_nonsense_policy_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(**bad)


def test_the_portal_and_ems_up_keep_their_delays() -> None:
    # The portal's broker connections: 0.2 s doubling to 10 s, jittered down to half.
    assert (RECONNECT.ceiling(0), RECONNECT.ceiling(20), RECONNECT.jitter) == (0.2, 10.0, 0.5)
    # `ems up` restarts a dead child after 0.5 s doubling to 8 s, exactly as it announces.
    restart = RestartPolicy().backoff
    assert [restart.ceiling(n) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert restart.jitter == 0
