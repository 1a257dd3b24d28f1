"""Live values and the current hour's alerts leave as a reading commits (running totals), not
when the rollup gets to it; the rollup then confirms them. Real broker and database.

The rollup is held back by taking its pass lock (what another hub replica's pass would hold):
whatever is published meanwhile came from the commit path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import Subscriber, wait_for
from devkit.hubkit import (
    Gateway,
    add_devices,
    count,
    create_gateway,
    start_hub,
    stored_hours,
    wait_rolled_up,
)
from hub.rollup_store import PASS_LOCK
from tests.integration.test_hub_alerts import add_owner, alert_watcher, alerts

NOW_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def live_events(watcher: Subscriber) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in watcher.received()]


def test_live_totals_and_alerts_leave_at_commit_while_the_rollup_waits(
    database_url: str, broker: Any
) -> None:
    owner = add_owner(database_url)
    (device,) = add_devices(database_url, 1, max_hourly_kwh=5.0, owner_id=owner, interval_s=60)
    live = Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        f"ems/v1/events/live/{device}",
    )
    alert_events = alert_watcher(broker, str(owner))
    gw = Gateway(broker, *create_gateway(broker))
    # An hour three hours ago, with the alert rules' clock pinned inside it (the early warning
    # test's way): the test does not depend on the time of day.
    h = NOW_HOUR - timedelta(hours=3)
    now = [h]
    hub = start_hub(database_url, broker, rollup_interval_s=0.05, live_min_interval_s=0.0)
    hub.alerts.clock = lambda: now[0]
    held = psycopg.connect(database_url, autocommit=True)

    def send(seq: int, minute: int, energy: float) -> str:
        ts = h + timedelta(minutes=minute)
        now[0] = ts + timedelta(seconds=5)
        reading = Reading(device, ts, energy, seq, power_w=1000.0)
        gw.publish(readings_topic(device), encode_reading(reading))
        return ts.isoformat().replace("+00:00", "Z")

    def total_for(ts: str) -> float | None:
        events = [e for e in live_events(live) if e["ts"] == ts and e["hour_kwh"] is not None]
        return events[-1]["hour_kwh"] if events else None

    def kinds() -> list[str]:
        return sorted(str(a[0]) for a in alerts(database_url, device))

    try:
        # The baseline: the first pass seeds the device's running state.
        first = send(0, 1, 10.0)
        wait_rolled_up(database_url)
        wait_for(lambda: total_for(first) is not None, what="the seeded total")
        assert total_for(first) == 0.0

        held.execute("SELECT pg_advisory_lock(%s)", (PASS_LOCK,))  # no rollup pass from here
        expected = [(1, 6, 11.5, 1.5), (2, 7, 13.0, 3.0), (3, 8, 16.0, 6.0)]
        for seq, minute, energy, hour_kwh in expected:
            ts = send(seq, minute, energy)
            wait_for(lambda ts=ts: total_for(ts) is not None, what=f"the live total of {ts}")
            assert total_for(ts) == hour_kwh
            if seq == 1:
                # 1.5 kWh in 6 minutes: 15 kWh projected against a limit of 5.
                wait_for(lambda: kinds() == ["early_warning"], what="the early warning")
        wait_for(lambda: kinds() == ["early_warning", "hourly_limit"], what="the limit")
        # All of it before any rollup: the readings are still marked, the hour not stored.
        assert count(database_url, "SELECT count(*) FROM rollup_log") > 0
        assert stored_hours(database_url, device).get(h) == (0.0, "measured")

        def raised() -> list[dict[str, Any]]:
            events = (json.loads(m.payload) for m in alert_events.received())
            return [e for e in events if e["event"] == "raised"]

        wait_for(lambda: len(raised()) == 2, what="both alerts published")
        by_kind = {e["kind"]: e for e in raised()}
        assert by_kind["hourly_limit"]["value_kwh"] == 6.0
        assert by_kind["early_warning"]["projected_kwh"] == 15.0

        held.execute("SELECT pg_advisory_unlock(%s)", (PASS_LOCK,))
        wait_rolled_up(database_url)
        # The rollup confirms: the stored hour is the live total, and no alert is raised twice.
        assert stored_hours(database_url, device)[h] == (6.0, "measured")
        assert kinds() == ["early_warning", "hourly_limit"]
        assert len(raised()) == 2
        hour_events = [
            e for e in live_events(live) if e["hour"].startswith(h.strftime("%Y-%m-%dT%H"))
        ]
        assert hour_events[-1]["hour_kwh"] == 6.0
    finally:
        held.close()
        hub.stop()
        gw.close()
        live.close()
        alert_events.close()


def test_an_out_of_order_reading_is_not_guessed_and_the_rollup_corrects(
    database_url: str, broker: Any
) -> None:
    (device,) = add_devices(database_url, 1, interval_s=60)
    live = Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        f"ems/v1/events/live/{device}",
    )
    gw = Gateway(broker, *create_gateway(broker))
    h = NOW_HOUR - timedelta(hours=3)
    hub = start_hub(database_url, broker, rollup_interval_s=0.05, live_min_interval_s=0.0)
    held = psycopg.connect(database_url, autocommit=True)

    def send(seq: int, minute: int, energy: float) -> None:
        reading = Reading(device, h + timedelta(minutes=minute), energy, seq)
        gw.publish(readings_topic(device), encode_reading(reading))

    try:
        send(0, 10, 100.0)
        wait_rolled_up(database_url)
        held.execute("SELECT pg_advisory_lock(%s)", (PASS_LOCK,))
        send(2, 30, 103.0)  # seq 1 is missing: it may be somewhere else; no total guessed
        wait_for(
            lambda: [e for e in live_events(live) if e["energy_kwh"] == 103.0],
            what="the event of the reading",
        )
        assert live_events(live)[-1]["hour_kwh"] is None
        send(1, 20, 101.0)  # it arrives late
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") == 3)
        held.execute("SELECT pg_advisory_unlock(%s)", (PASS_LOCK,))
        wait_rolled_up(database_url)
        # The rollup's correction: the hour as stored.
        wait_for(lambda: live_events(live)[-1]["hour_kwh"] == 3.0, what="the correction")
        assert live_events(live)[-1]["energy_kwh"] == 103.0
        assert stored_hours(database_url, device)[h] == (3.0, "measured")
    finally:
        held.close()
        hub.stop()
        gw.close()
        live.close()
