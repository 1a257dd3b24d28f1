"""Alerts from the hub, against the real broker and database."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contract.codec import encode_status
from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic, status_topic
from devkit.helpers import Subscriber, wait_for
from devkit.hubkit import Gateway, add_devices, count, create_gateway, start_hub, wait_rolled_up
from portal.broker_admin import BrokerAdmin, new_meter_password

NOW_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def alerts(dsn: str, device: uuid.UUID) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT kind, hour, status, late, value_kwh, final_kwh, user_id FROM alerts"
            " WHERE device_id = %s ORDER BY raised_at, kind",
            (device,),
        ).fetchall()


def add_owner(dsn: str) -> uuid.UUID:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, role, password_hash) VALUES (%s, 'client', 'x')"
            " RETURNING id",
            (f"u{uuid.uuid4().hex[:8]}",),
        ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def alert_watcher(broker, user: str) -> Subscriber:  # type: ignore[no-untyped-def]
    """What the portals hear: alert events for ``user`` (``+``: everyone's)."""
    return Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        f"ems/v1/events/alerts/{user}",
    )


def test_two_hub_replicas_raise_exactly_one_alert_per_device_hour(database_url, broker) -> None:
    owner = add_owner(database_url)
    (device,) = add_devices(database_url, 1, max_hourly_kwh=5.0, owner_id=owner)
    watcher = alert_watcher(broker, "+")
    gw = Gateway(broker, *create_gateway(broker))
    hubs = [start_hub(database_url, broker, rollup_interval_s=0.05) for _ in range(2)]
    try:
        # An hour that closed long ago (so the alert is late whenever the test runs): 400
        # readings, climbing 0.1 kWh each, both hubs taking turns.
        start = NOW_HOUR - timedelta(hours=2)
        for i in range(400):
            ts = start + timedelta(seconds=9 * i)
            gw.publish(readings_topic(device), encode_reading(Reading(device, ts, 0.1 * i)))
        gw.flush()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") == 400)
        wait_rolled_up(database_url)
        assert all(h.metrics.stored._value.get() > 0 for h in hubs), "both hubs must ingest"
        limit_alerts = [a for a in alerts(database_url, device) if a[0] == "hourly_limit"]
        assert len(limit_alerts) == 1
        _kind, hour, status, late, value, _final, user = limit_alerts[0]
        assert (hour, status, late, user) == (start, "open", True, owner)
        assert value > 5.0
        raised = wait_for(
            lambda: [
                json.loads(m.payload)
                for m in watcher.received()
                if json.loads(m.payload)["kind"] == "hourly_limit"
            ],
            what="the published alert",
        )
        assert [m.topic for m in watcher.received()] == [f"ems/v1/events/alerts/{owner}"] * len(
            watcher.received()
        )
        assert len([r for r in raised if r["event"] == "raised"]) == 1
    finally:
        for h in hubs:
            h.stop()
        gw.close()
        watcher.close()


def test_late_reading_moves_an_alert_to_the_hour_it_belongs_to(database_url, broker) -> None:
    (device,) = add_devices(database_url, 1, max_hourly_kwh=20.0)
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker, rollup_interval_s=0.05)
    h2, h1 = NOW_HOUR - timedelta(hours=2), NOW_HOUR - timedelta(hours=1)
    try:
        for ts, v in [(h2 + timedelta(minutes=50), 100.0), (h1 + timedelta(minutes=40), 150.0)]:
            gw.publish(readings_topic(device), encode_reading(Reading(device, ts, v)))
        gw.flush()
        wait_for(
            lambda: [a for a in alerts(database_url, device) if a[1] == h1],
            what="the alert for the hour that got 50 kWh",
        )
        # The meter's 09:55 reading arrives late: 48 kWh belonged to the hour before.
        gw.publish(
            readings_topic(device),
            encode_reading(Reading(device, h2 + timedelta(minutes=55), 148.0)),
        )
        gw.flush()
        wait_for(
            lambda: (
                {(a[1], a[2]) for a in alerts(database_url, device)}
                == {(h1, "retracted"), (h2, "open")}
            ),
            what="retraction and late alert",
        )
        by_hour = {a[1]: a for a in alerts(database_url, device)}
        assert by_hour[h2][3] is True  # late
        assert by_hour[h1][5] == 2.0  # the retracted hour's final value
    finally:
        hub.stop()
        gw.close()


def _meter_process(broker, device: uuid.UUID, password: str) -> subprocess.Popen[bytes]:
    """A meter that connects with its last will and then hangs until killed."""
    code = textwrap.dedent(f"""
        import sys, time, paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from contract.codec import encode_status
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="{device}", protocol=mqtt.MQTTv5)
        c.username_pw_set("{device}", "{password}")
        c.will_set("ems/v1/meters/{device}/status", encode_status("offline", None), 1, True)
        c.connect("{broker.host}", {broker.port}, keepalive=60)
        c.loop_start()
        c.publish("ems/v1/meters/{device}/status", encode_status("online", None), 1, True)
        print("up", flush=True)
        time.sleep(600)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def test_meter_offline_by_last_will_and_by_staleness_and_back_online(database_url, broker) -> None:
    will_dev, quiet_dev = add_devices(database_url, 2, interval_s=1)
    password = new_meter_password()

    async def provision() -> None:
        async with BrokerAdmin(
            broker.host, broker.port, broker.portal_user, broker.portal_password
        ) as admin:
            await admin.create_meter(will_dev, password)

    asyncio.run(provision())
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker, stale_intervals=3.0, status_check_interval_s=0.2)

    def state(device: uuid.UUID) -> str | None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT state FROM device_status WHERE device_id = %s", (device,)
            ).fetchone()
        return None if row is None else str(row[0])

    def history(device: uuid.UUID) -> list[tuple[str, str]]:
        with psycopg.connect(database_url) as conn:
            return [
                (str(r[0]), str(r[1]))
                for r in conn.execute(
                    "SELECT state, reason FROM device_status_history WHERE device_id = %s"
                    " ORDER BY id",
                    (device,),
                )
            ]

    meter = _meter_process(broker, will_dev, password)
    try:
        assert meter.stdout is not None and meter.stdout.readline().strip() == b"up"
        wait_for(lambda: state(will_dev) == "online", what="birth message → online")
        meter.send_signal(signal.SIGKILL)  # dies without DISCONNECT: the broker sends its will
        meter.wait(10)
        wait_for(lambda: state(will_dev) == "offline", what="last will → offline")
        assert history(will_dev)[-1] == ("offline", "will")

        # Connected but silent: a reading, then nothing for more than 3 intervals (3 s).
        gw.publish(
            readings_topic(quiet_dev), encode_reading(Reading(quiet_dev, datetime.now(UTC), 1.0))
        )
        gw.flush()
        wait_for(lambda: state(quiet_dev) == "online", what="first reading → online")
        wait_for(lambda: state(quiet_dev) == "offline", timeout=15, what="staleness → offline")
        assert history(quiet_dev)[-1] == ("offline", "stale")

        # Both come back: a birth message, and a reading.
        gw.publish(status_topic(will_dev), encode_status("online", datetime.now(UTC)))
        gw.publish(
            readings_topic(quiet_dev), encode_reading(Reading(quiet_dev, datetime.now(UTC), 2.0))
        )
        gw.flush()
        wait_for(
            lambda: state(will_dev) == "online" and state(quiet_dev) == "online",
            what="both back online",
        )
        assert history(quiet_dev)[-1] == ("online", "reading")
        kinds = {d: [a[0] for a in alerts(database_url, d)] for d in (will_dev, quiet_dev)}
        assert kinds[will_dev][-2:] == ["offline", "online"]
        assert kinds[quiet_dev][-2:] == ["offline", "online"]
    finally:
        if meter.poll() is None:
            meter.kill()
        meter.wait(10)
        if meter.stdout is not None:
            meter.stdout.close()
        hub.stop()
        gw.close()


def test_a_restarted_hub_takes_replayed_status_only_when_it_is_news(database_url, broker) -> None:
    """Retained statuses come back on every (re)subscribe: only a newer one changes the state."""
    silent, returned = add_devices(database_url, 2, interval_s=1)
    gw = Gateway(broker, *create_gateway(broker))
    gw.client.publish(status_topic(silent), encode_status("online", datetime.now(UTC)), 1, True)
    hub = start_hub(database_url, broker, stale_intervals=3.0, status_check_interval_s=0.2)
    try:
        # Connected but silent: the birth made it online, staleness makes it offline.
        wait_for(lambda: _state(database_url, silent) == "offline", timeout=15, what="stale")
    finally:
        hub.stop()
    # While no hub listens, `returned` comes back with a fresh (retained) birth after an
    # offline the hub recorded an hour ago.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO device_status (device_id, state, since) VALUES (%s, 'offline', %s)",
            (returned, datetime.now(UTC) - timedelta(hours=1)),
        )
    gw.client.publish(status_topic(returned), encode_status("online", datetime.now(UTC)), 1, True)
    gw.close()
    before = alerts(database_url, silent)
    hub = start_hub(database_url, broker, stale_intervals=1e6)
    try:
        # Mosquitto sends a subscription's retained messages together, right after the
        # SUBACK: once one is applied and nothing is queued, the other was taken too.
        wait_for(
            lambda: (
                _state(database_url, returned) == "online" and hub.metrics.backlog._value.get() == 0
            ),
            what="the new hub to take both replayed statuses",
        )
        assert _state(database_url, returned) == "online"
        assert _state(database_url, silent) == "offline"  # its "online" is older than that
        assert alerts(database_url, silent) == before  # no online/offline flapping
        assert [a[0] for a in alerts(database_url, returned)] == ["online"]
    finally:
        hub.stop()


def _state(dsn: str, device: uuid.UUID) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT state FROM device_status WHERE device_id = %s", (device,)
        ).fetchone()
    return None if row is None else str(row[0])


def test_early_warning_then_the_limit_once_each_and_the_final_value_when_the_hour_closes(
    database_url, broker
) -> None:
    owner = add_owner(database_url)
    (device,) = add_devices(database_url, 1, max_hourly_kwh=5.0, owner_id=owner)
    watcher = alert_watcher(broker, str(owner))
    gw = Gateway(broker, *create_gateway(broker))
    # The rules run as if it were `now` in hour h (three hours ago, so readings are accepted
    # and the hour has closed for the database's clock); readings come as a meter sends them.
    h = NOW_HOUR - timedelta(hours=3)
    now = [h + timedelta(minutes=20)]
    hub = start_hub(database_url, broker, rollup_interval_s=0.05, status_check_interval_s=0.2)
    hub.alerts.clock = lambda: now[0]

    def send(minute: int, energy: float) -> None:
        ts = h + timedelta(minutes=minute)
        gw.publish(readings_topic(device), encode_reading(Reading(device, ts, energy)))
        gw.flush()
        wait_for(
            lambda: count(database_url, f"SELECT count(*) FROM readings WHERE ts = '{ts}'") == 1
        )
        wait_rolled_up(database_url)

    def kinds() -> list[str]:
        return [str(a[0]) for a in alerts(database_url, device)]

    try:
        send(-10, 100.0)  # baseline in the hour before
        send(10, 101.5)
        send(20, 103.0)  # 3 kWh in 20 minutes: 9 kWh projected for the hour, limit 5
        wait_for(lambda: kinds() == ["early_warning"], what="the early warning")
        now[0] = h + timedelta(minutes=25)
        send(25, 103.5)  # still projected over the limit: no second warning
        assert kinds() == ["early_warning"]
        now[0] = h + timedelta(minutes=30)
        send(30, 104.5)  # 4.5 kWh: under the limit, warned already
        now[0] = h + timedelta(minutes=40)
        send(40, 105.5)  # 5.5 kWh: over the limit
        wait_for(lambda: sorted(kinds()) == ["early_warning", "hourly_limit"], what="the limit")
        by_kind = {str(a[0]): a for a in alerts(database_url, device)}
        _k, hour, status, late, value, _f, user = by_kind["hourly_limit"]
        assert (hour, status, late, user) == (h, "open", False, owner)
        assert value == pytest.approx(5.5)
        # The hour has closed (for the database, hours ago): its final value is recorded.
        wait_for(lambda: _final(database_url, device) is not None, what="the final value")
        assert _final(database_url, device) == pytest.approx(5.5)
        # A late reading for that hour raises nothing new and updates the final value.
        now[0] = h + timedelta(hours=2)
        send(50, 106.5)
        wait_for(lambda: _final(database_url, device) == pytest.approx(6.5), what="new final")
        assert sorted(kinds()) == ["early_warning", "hourly_limit"]

        def published(kind: str) -> list[str]:
            events = (json.loads(m.payload) for m in watcher.received())
            return [e["event"] for e in events if e["kind"] == kind]

        # Raised once, then updated when the hour closed (5.5) and by the late reading (6.5).
        wait_for(lambda: published("hourly_limit") == ["raised", "updated", "updated"])
        assert published("early_warning") == ["raised"]
    finally:
        hub.stop()
        gw.close()
        watcher.close()


def _final(dsn: str, device: uuid.UUID) -> float | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT final_kwh FROM alerts WHERE device_id = %s AND kind = 'hourly_limit'",
            (device,),
        ).fetchone()
    return None if row is None or row[0] is None else float(row[0])
