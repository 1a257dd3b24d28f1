"""Live events (hub.live): at most one per device per interval, the newest held back and sent
when its interval has passed, with the device as the registry had it at the reading's commit."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from contract.payloads import LiveEvent, Reading
from contract.topics import live_topic
from hub import live as live_module
from hub.live import LivePublisher
from hub.registry import DeviceInfo, DeviceRegistry

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNER = uuid.UUID(int=7)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_held_back_total_leaves_as_it_was_when_its_interval_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(live_module.time, "monotonic", clock)
    device = uuid.UUID(int=1)
    info = DeviceInfo(device, OWNER, 5.0, "cumulative", None, 600)
    registry = DeviceRegistry()
    registry.replace_all([info])
    sent: list[tuple[str, bytes]] = []
    publisher = LivePublisher(sent.extend, registry, min_interval_s=1.0)

    def reading(minute: int) -> Reading:
        return Reading(device, T0 + timedelta(minutes=minute), 100.0 + minute)

    publisher.committed([reading(0)])  # sent at once
    clock.now += 0.2
    publisher.committed([reading(10)])  # within the interval: held back
    clock.now += 0.2
    publisher.committed([reading(20)])  # replaces the held-back one
    registry.update([replace(info, max_hourly_kwh=9.0)])  # after that reading's commit
    assert len(sent) == 1
    assert publisher.next_due() == pytest.approx(0.6)
    publisher.flush()  # not due yet
    assert len(sent) == 1
    clock.now += 0.6
    publisher.flush()
    assert [topic for topic, _ in sent] == [live_topic(device)] * 2
    events = [msgspec.json.decode(payload, type=LiveEvent) for _, payload in sent]
    assert [e.energy_kwh for e in events] == [100.0, 120.0]  # the newest, once
    assert events[1].device_id == str(device)
    assert events[1].owner_id == str(OWNER)
    assert events[1].max_hourly_kwh == 5.0  # as the registry had it then
    assert publisher.next_due() == float("inf")
    publisher.flush()
    assert len(sent) == 2
