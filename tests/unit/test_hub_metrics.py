"""The hub's batch-fed histogram exposes what a prometheus_client Histogram would; its stage
clock books each stage's wall and CPU time."""

from __future__ import annotations

import random
import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from hub.metrics import STAGES, BatchHistogram, Stages

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


def stage_values(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {s: registry.get_sample_value(name, {"stage": s}) or 0.0 for s in STAGES}


def test_a_lap_books_the_time_since_its_mark_to_one_stage_and_starts_the_next() -> None:
    registry = CollectorRegistry()
    stages = Stages(registry)
    first = stages.mark()
    sum(i * i for i in range(200_000))  # CPU work on this thread
    second = stages.lap("prepare", first)
    third = stages.lap("copy", second)
    wall = stage_values(registry, "hub_stage_seconds_total")
    cpu = stage_values(registry, "hub_stage_cpu_seconds_total")
    # Consecutive laps share their boundary: nothing counted twice, nothing lost.
    assert wall["prepare"] + wall["copy"] == pytest.approx(third[0] - first[0], abs=1e-9)
    assert wall["prepare"] == pytest.approx(second[0] - first[0], abs=1e-9)
    assert cpu["prepare"] > 0
    assert {s for s, v in wall.items() if v} <= {"prepare", "copy"}
    assert {s for s, v in cpu.items() if v} <= {"prepare", "copy"}


def test_a_stage_spent_waiting_books_wall_time_but_not_cpu() -> None:
    """Blocked on another thread's work, this thread spends no CPU: a stage's wall less its CPU
    is its waiting (the figure that tells a pipeline-bound hub from a CPU-bound one)."""
    registry = CollectorRegistry()
    stages = Stages(registry)
    other = threading.Thread(target=lambda: sum(i * i for i in range(2_000_000)))
    mark = stages.mark()
    other.start()
    other.join()
    stages.lap("commit", mark)
    wall = registry.get_sample_value("hub_stage_seconds_total", {"stage": "commit"})
    cpu = registry.get_sample_value("hub_stage_cpu_seconds_total", {"stage": "commit"})
    assert wall is not None and cpu is not None
    assert cpu < wall / 2
