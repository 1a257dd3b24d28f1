"""Foundation: migrations, the broker's authentication, and `ems up` as a user runs it."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devkit.helpers import Subscriber, mqtt_connect_result
from devkit.migrationkit import migrate_with_first_0002
from devkit.stackkit import (
    ADMIN_PASSWORD,
    StackPorts,
    kill_stack,
    processes_mentioning,
    read_until,
    start_stack,
    stop_stack,
)
from ems.postgres import PostgresServer
from migrations.runner import MigrationError, current_version, discover, migrate
from tests.conftest import BrokerInfo

SCHEMA_QUERY = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY table_name, column_name
"""


def schema_snapshot(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        cols = conn.execute(SCHEMA_QUERY).fetchall()
        idx = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [*cols, *idx]


@pytest.fixture
def scratch_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """An empty database of its own, dropped after the test."""
    name = "mig_" + os.urandom(4).hex()
    pg_server.create_database(name)
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name)


def test_migrations_apply_to_empty_database_and_again_change_nothing(scratch_dsn: str) -> None:
    dsn = scratch_dsn
    assert current_version(dsn) == 0
    applied = migrate(dsn)
    assert [m.version for m in applied] == [m.version for m in discover()]
    expected_tables = {
        "users",
        "devices",
        "readings",
        "hourly_energy",
        "alerts",
        "device_status",
        "device_status_history",
        "conversations",
        "messages",
        "audit_log",
        "dead_letters",
        "revoked_tokens",
        "login_failures",
        "schema_migrations",
    }
    with psycopg.connect(dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert expected_tables <= tables
    before = schema_snapshot(dsn)
    assert migrate(dsn) == []
    assert schema_snapshot(dsn) == before
    assert current_version(dsn) == discover()[-1].version


def test_readings_are_indexed_for_device_time_range_scans(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        hypertable = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        if hypertable.fetchone() != (0,):
            pytest.skip("readings is a hypertable here: test_timescale.py checks its chunks' scans")
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT * FROM readings WHERE device_id = gen_random_uuid()"
                " AND ts >= now() - interval '1 day' AND ts < now()"
            )
        )
    assert "readings_pkey" in plan


def test_a_changed_migration_is_refused(scratch_dsn: str, tmp_path: Path) -> None:
    dsn = scratch_dsn
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id int);")
    migrate(dsn, directory=tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(dsn, directory=tmp_path)


def test_a_revision_naming_the_applied_checksum_is_recorded_not_refused(
    scratch_dsn: str, tmp_path: Path
) -> None:
    dsn = scratch_dsn
    first = "CREATE TABLE t1 (id int);\n"
    revised = (
        f"-- ems:replaces {hashlib.sha256(first.encode()).hexdigest()}\n"
        "CREATE TABLE IF NOT EXISTS t1 (id int);\n"
    )
    (tmp_path / "0001_first.sql").write_text(first)
    migrate(dsn, directory=tmp_path)
    (tmp_path / "0001_first.sql").write_text(revised)
    said: list[str] = []
    assert migrate(dsn, directory=tmp_path, progress=said.append) == []
    assert said == ["migration 0001_first: recorded its revised text (an earlier one ran here)"]
    recorded = "SELECT checksum FROM schema_migrations WHERE version = 1"
    with psycopg.connect(dsn) as conn:
        assert conn.execute(recorded).fetchone() == (discover(tmp_path)[0].checksum,)
    # The revision is now what ran here: only it is accepted from now on, not a third text.
    (tmp_path / "0001_first.sql").write_text(revised + "-- and more\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(dsn, directory=tmp_path)


def test_migrations_and_steps_say_their_notices_and_steps_run_every_time(
    scratch_dsn: str, tmp_path: Path
) -> None:
    dsn = scratch_dsn
    sql, steps = tmp_path / "sql", tmp_path / "steps"
    sql.mkdir()
    steps.mkdir()
    (sql / "0001_first.sql").write_text(
        "CREATE TABLE counter (n int); INSERT INTO counter VALUES (0);"
        " DO $$ BEGIN RAISE NOTICE 'table made'; END $$;"
    )
    (steps / "bump.sql").write_text(
        "UPDATE counter SET n = n + 1;"
        " DO $$ BEGIN RAISE WARNING 'bumped to %', (SELECT n FROM counter); END $$;"
    )
    said: list[str] = []
    migrate(dsn, directory=sql, steps=steps, progress=said.append)
    assert said == [
        "applying migration 0001_first",
        "0001_first: table made",
        "bump: WARNING: bumped to 1",
    ]
    said.clear()
    assert migrate(dsn, directory=sql, steps=steps, progress=said.append) == []
    assert said == ["bump: WARNING: bumped to 2"]  # nothing of the runner's own statements


def test_a_database_that_ran_the_first_0002_migrates_on(scratch_dsn: str, tmp_path: Path) -> None:
    """0002 was revised for TimescaleDB's Apache edition; where it ran, nothing else changes."""
    dsn = scratch_dsn
    migrate_with_first_0002(dsn, tmp_path)
    before = schema_snapshot(dsn)
    said: list[str] = []
    assert migrate(dsn, progress=said.append) == []
    assert said == ["migration 0002_timescale: recorded its revised text (an earlier one ran here)"]
    assert schema_snapshot(dsn) == before
    said.clear()
    assert migrate(dsn, progress=said.append) == []
    assert said == []


def test_timescale_migration_is_a_noop_on_plain_postgresql(
    pg_server: PostgresServer, scratch_dsn: str
) -> None:
    """Without the extension preloaded (installed or not), 0002 says so and changes nothing."""
    preload = "SELECT current_setting('shared_preload_libraries') LIKE '%timescaledb%'"
    with psycopg.connect(pg_server.dsn("postgres")) as conn:
        if conn.execute(preload).fetchone() == (True,):
            pytest.skip("timescaledb is preloaded here; test_timescale.py covers it")
    dsn = scratch_dsn
    said: list[str] = []
    migrate(dsn, progress=said.append)
    assert "0002_timescale: timescaledb not available: readings stay a plain table" in said
    assert not [line for line in said if "timescale_policies" in line]
    with psycopg.connect(dsn) as conn:
        installed = conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    assert installed == (0,)


def test_broker_refuses_anonymous_and_wrong_password(broker: BrokerInfo) -> None:
    anonymous = mqtt_connect_result(broker.host, broker.port, None, None)
    assert not isinstance(anonymous, str) and anonymous.is_failure
    wrong = mqtt_connect_result(broker.host, broker.port, broker.hub_user, "not-the-password")
    assert not isinstance(wrong, str) and wrong.is_failure
    unknown = mqtt_connect_result(broker.host, broker.port, "nobody", "whatever")
    assert not isinstance(unknown, str) and unknown.is_failure


def test_broker_accepts_service_accounts_with_their_roles(broker: BrokerInfo) -> None:
    for user, password in [
        (broker.hub_user, broker.hub_password),
        (broker.portal_user, broker.portal_password),
    ]:
        rc = mqtt_connect_result(broker.host, broker.port, user, password)
        assert not isinstance(rc, str) and not rc.is_failure, (user, rc)
    # The hub may take readings through the shared subscription; the portal may not.
    hub = Subscriber(
        broker.host,
        broker.port,
        broker.hub_user,
        broker.hub_password,
        "$share/hub/ems/v1/meters/+/readings",
    )
    portal = Subscriber(
        broker.host,
        broker.port,
        broker.portal_user,
        broker.portal_password,
        "ems/v1/meters/+/readings",
    )
    try:
        assert not hub.granted[0].is_failure
        assert portal.granted[0].is_failure
    finally:
        hub.close()
        portal.close()


def test_service_account_cannot_publish_a_meter_reading(broker: BrokerInfo) -> None:
    topic = "ems/v1/meters/5c2494a3-0000-4000-8000-000000000001/readings"
    hub = Subscriber(
        broker.host,
        broker.port,
        broker.hub_user,
        broker.hub_password,
        "$share/hub/ems/v1/meters/+/readings",
    )
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.username_pw_set(broker.portal_user, broker.portal_password)
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    try:
        info = publisher.publish(topic, b'{"ts": 0, "energy_kwh": 1}', qos=1)
        info.wait_for_publish(5)
        time.sleep(0.3)  # a denied publish has no observable event; give delivery its chance
        assert hub.received() == []
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        hub.close()


# --- ems up ---------------------------------------------------------------------------------


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
        return int(resp.status)


@pytest.fixture
def up_ports() -> StackPorts:
    return StackPorts.free()


def test_ems_up_serves_health_and_ctrl_c_leaves_nothing_behind(
    services_dir: Path, up_ports: StackPorts
) -> None:
    home = services_dir / ("up-" + os.urandom(4).hex())
    proc = start_stack(home, up_ports, admin_password=ADMIN_PASSWORD)
    try:
        out = read_until(proc, "Press Ctrl-C")
        assert f"http://127.0.0.1:{up_ports.portal}" in out
        assert "admin" in out
        assert _get(f"http://127.0.0.1:{up_ports.hub}/health") == 200
        assert _get(f"http://127.0.0.1:{up_ports.portal}/health") == 200
        assert processes_mentioning(str(home)), "the stack's processes should be visible"
        stop_stack(proc, home)
    finally:
        kill_stack(proc)

    # A second `ems up` reuses the data: no new cluster, the administrator still there.
    proc = start_stack(home, up_ports, admin_password=ADMIN_PASSWORD)
    try:
        out = read_until(proc, "Press Ctrl-C")
        assert "initialised" not in out
        assert "schema is up to date" in out
        assert "(unchanged)" in out
        stop_stack(proc, home, signal.SIGTERM)
    finally:
        kill_stack(proc)


def test_make_run_brings_up_a_demo_fleet_with_history_and_stops_cleanly(
    services_dir: Path, up_ports: StackPorts
) -> None:
    """What `make run` runs: `ems up --demo`, as a new user sees it."""
    home = services_dir / ("demo-" + os.urandom(4).hex())
    proc = start_stack(home, up_ports, "--demo", admin_password=ADMIN_PASSWORD)
    try:
        out = read_until(proc, "Press Ctrl-C", timeout=180)
        portal = f"http://127.0.0.1:{up_ports.portal}"
        assert f"portal: {portal}" in out
        login = re.search(r"^\s+demo\s+(\S+)\s+client with 4 meters$", out, re.MULTILINE)
        assert login is not None, out
        with httpx.Client(base_url=portal, timeout=10) as client:
            token = client.post(
                "/api/v1/auth/login", json={"username": "demo", "password": login[1]}
            ).json()["access_token"]
            client.cookies.clear()
            client.headers["Authorization"] = f"Bearer {token}"
            devices = client.get("/api/v1/devices").json()
            assert len(devices) == 4
            # Two days of backfilled history: yesterday (the client's whole local day) has
            # energy on every meter.
            for device in devices:
                daily = client.get(f"/api/v1/devices/{device['id']}/consumption/daily").json()
                assert daily["days"][-2]["energy_kwh"] > 0, daily["days"][-2]
        rest = stop_stack(proc, home)
        assert "stopped ems-sim" in rest
    finally:
        kill_stack(proc)


def test_ems_up_reports_a_port_in_use(services_dir: Path, up_ports: StackPorts) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", up_ports.mqtt))
        taken.listen()
        proc = start_stack(
            services_dir / ("busy-" + os.urandom(4).hex()), up_ports, admin_password=ADMIN_PASSWORD
        )
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {up_ports.mqtt}" in out and "already in use" in out
