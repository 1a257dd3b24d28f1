"""The hub's batch-fed histogram exposes what a prometheus_client Histogram would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from hub.metrics import BatchHistogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(
        line for line in text.splitlines() if line.startswith("lag_") and "_created" not in line
    )


def test_batches_give_the_same_exposition_as_observing_one_value_at_a_time() -> None:
    rng = random.Random(7)
    # Values on the bounds themselves too: Prometheus buckets are "less than or equal".
    values = [rng.expovariate(5) for _ in range(5000)] + list(BUCKETS) + [0.0, 11.0]
    mine, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("lag", "help", BUCKETS, mine)
    single = Histogram("lag", "help", buckets=BUCKETS, registry=theirs)
    for k in range(0, len(values), 700):
        batch.observe_many(values[k : k + 700])
    for v in values:
        single.observe(v)
    ours, reference = exposition(mine), exposition(theirs)
    sums = [float(lines.pop()[len("lag_sum ") :]) for lines in (ours, reference)]  # sorted last
    assert ours == reference  # every bucket and the count
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)  # summed in another order
    assert 'lag_bucket{le="+Inf"} 5013.0' in ours
