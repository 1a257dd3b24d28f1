"""Migration 0002 on a PostgreSQL that has TimescaleDB: hypertable, compression, retention.

The normal case (CI, plain PostgreSQL) skips every test here. To run them, install the
timescaledb extension into the server that the suite uses and preload it:
``EMS_TEST_PG_PRELOAD=timescaledb pytest tests/integration/test_timescale.py``.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ems.postgres import PostgresServer
from ems.procs import RunAs, free_port
from hub.batch import PreparedBatch
from hub.energy import MeterReading, compute_hourly
from hub.protocol import Reading
from hub.rollup_store import rollup_pending
from hub.storage import PgStorage
from migrations.runner import SQL_DIR, migrate
from tests.hubkit import add_devices, count, stored_hours

NOT_INSTALLED = "timescaledb extension is not installed on this PostgreSQL"
NOT_PRELOADED = (
    "timescaledb extension is not preloaded by this PostgreSQL"
    " (run with EMS_TEST_PG_PRELOAD=timescaledb)"
)


def require_timescale(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        available = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if not available or not available[0]:
        pytest.skip(NOT_INSTALLED)
    if not preload or "timescaledb" not in str(preload[0]):
        pytest.skip(NOT_PRELOADED)


@pytest.fixture
def ts_url(database_url: str) -> str:
    """A migrated database of this test's own, on a server with TimescaleDB preloaded."""
    require_timescale(database_url)
    return database_url


def one(dsn: str, sql: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None, sql
    return row


def test_migration_creates_the_extension(ts_url: str) -> None:
    assert count(ts_url, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 1


def test_readings_is_a_hypertable_on_ts_in_week_chunks(ts_url: str) -> None:
    dimension, compressed = one(
        ts_url,
        "SELECT primary_dimension, compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = 'public' AND hypertable_name = 'readings'",
    )
    assert (dimension, compressed) == ("ts", True)
    (interval,) = one(
        ts_url,
        "SELECT time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_name = 'readings' AND column_name = 'ts'",
    )
    assert interval == timedelta(days=7)
    # Only readings: hourly_energy and the rest stay plain tables.
    assert count(ts_url, "SELECT count(*) FROM timescaledb_information.hypertables") == 1


def test_readings_keep_only_their_primary_key_index(ts_url: str) -> None:
    """create_hypertable's default (ts DESC) index is dropped again (migration 0005)."""
    with psycopg.connect(ts_url) as conn:
        names = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = 'readings'"
        ).fetchall()
    assert names == [("readings_pkey",)]


def test_device_time_range_scans_use_the_chunks_primary_keys(ts_url: str) -> None:
    (device,) = add_devices(ts_url, 1)
    with psycopg.connect(ts_url) as conn:
        conn.execute(
            "INSERT INTO readings (device_id, ts, energy_kwh) VALUES (%s, now(), 1)", (device,)
        )
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                "EXPLAIN SELECT * FROM readings WHERE device_id = %s"
                " AND ts >= now() - interval '1 day' AND ts < now()",
                (device,),
            )
        )
    assert "_readings_pkey" in plan, plan  # a chunk's copy of the primary key


def test_readings_compress_segmented_by_device_ordered_by_ts(ts_url: str) -> None:
    with psycopg.connect(ts_url) as conn:
        rows = conn.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'readings'"
            " ORDER BY segmentby_column_index NULLS LAST, orderby_column_index"
        ).fetchall()
    assert rows == [("device_id", 1, None, None), ("ts", None, 1, True)]


def test_compression_and_retention_policies_are_scheduled(ts_url: str) -> None:
    with psycopg.connect(ts_url) as conn:
        rows = conn.execute(
            "SELECT proc_name, config, scheduled FROM timescaledb_information.jobs"
            " WHERE hypertable_name = 'readings' ORDER BY proc_name"
        ).fetchall()
    policies = {str(name): (config, scheduled) for name, config, scheduled in rows}
    assert set(policies) == {"policy_compression", "policy_retention"}
    compression, retention = policies["policy_compression"], policies["policy_retention"]
    assert compression[0]["compress_after"] == "30 days"  # type: ignore[index]
    assert retention[0]["drop_after"] == "5 years"  # type: ignore[index]
    assert compression[1] and retention[1]


def test_policies_compress_after_30_days_and_drop_after_5_years(ts_url: str) -> None:
    """Each policy run by hand (the suite runs no job scheduler) does what it says."""
    (device,) = add_devices(ts_url, 1)
    now = datetime.now(UTC)
    ages = [timedelta(days=1), timedelta(days=60), timedelta(days=365 * 6)]
    with psycopg.connect(ts_url, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO readings (device_id, ts, energy_kwh) VALUES (%s, %s, %s)",
            [(device, now - age, float(i)) for i, age in enumerate(ages)],
        )
        jobs = dict(
            conn.execute(
                "SELECT proc_name, job_id FROM timescaledb_information.jobs"
                " WHERE hypertable_name = 'readings'"
            ).fetchall()
        )
        conn.execute("CALL run_job(%s)", (jobs["policy_retention"],))
        conn.execute("CALL run_job(%s)", (jobs["policy_compression"],))
        kept = [r[0] for r in conn.execute("SELECT energy_kwh FROM readings ORDER BY ts")]
        chunks = conn.execute(
            "SELECT range_end < now() - interval '30 days', is_compressed"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
        ).fetchall()
    assert kept == [1.0, 0.0]  # the six-year-old reading is gone
    assert sorted(chunks) == [(False, False), (True, True)]


def test_migrating_again_applies_nothing(ts_url: str) -> None:
    assert migrate(ts_url) == []
    jobs = "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'readings'"
    assert count(ts_url, jobs) == 2


def test_existing_readings_are_moved_into_chunks(pg_server: PostgresServer, tmp_path: Path) -> None:
    """A database that has readings before 0002 runs (migrate_data => true)."""
    require_timescale(pg_server.dsn("postgres"))
    name = "ts_" + uuid.uuid4().hex[:12]
    pg_server.create_database(name)
    dsn = pg_server.dsn(name)
    try:
        first = tmp_path / "sql"
        first.mkdir()
        (first / "0001_schema.sql").write_text((SQL_DIR / "0001_schema.sql").read_text())
        migrate(dsn, directory=first)
        (device,) = add_devices(dsn, 1)
        start = datetime.now(UTC) - timedelta(days=40)
        with psycopg.connect(dsn) as conn:
            conn.cursor().executemany(
                "INSERT INTO readings (device_id, ts, energy_kwh) VALUES (%s, %s, %s)",
                [(device, start + timedelta(hours=i), float(i)) for i in range(24 * 30)],
            )
        assert [m.version for m in migrate(dsn)][:1] == [2]
        assert count(dsn, "SELECT count(*) FROM readings") == 24 * 30
        assert count(dsn, "SELECT count(*) FROM ONLY readings") == 0  # all in chunks
        assert count(dsn, "SELECT count(*) FROM show_chunks('readings')") >= 4
    finally:
        pg_server.drop_database(name)


def test_hub_sql_works_on_compressed_chunks(ts_url: str) -> None:
    """Duplicates, conflicts and late readings in a compressed chunk; rollup; device delete."""
    (device,) = add_devices(ts_url, 1)
    hour0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old = [(hour0 - timedelta(days=60) + timedelta(minutes=10 * i), 100.0 + i) for i in range(36)]
    new = [(hour0 - timedelta(days=1) + timedelta(minutes=10 * i), 500.0 + i) for i in range(12)]
    storage = PgStorage(ts_url)
    try:
        registry = {d.device_id: d for d in storage.load_devices()}

        def store(points: list[tuple[datetime, float]]) -> tuple[int, int, list[str]]:
            batch = PreparedBatch(readings=[Reading(device, ts, v) for ts, v in points])
            out = storage.commit_batch(batch)
            rollup_pending(storage.conn, registry.get)
            return out.stored, out.duplicates, [d.reason for d in out.dead]

        assert store(old + new) == (len(old) + len(new), 0, [])
        with psycopg.connect(ts_url, autocommit=True) as conn:
            compressed = conn.execute(
                "SELECT compress_chunk(c) FROM show_chunks('readings',"
                " older_than => interval '30 days') AS c"
            ).fetchall()
            assert compressed
        assert count(
            ts_url,
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' AND is_compressed",
        ) == len(compressed)

        # ON CONFLICT (device_id, ts) DO NOTHING RETURNING against compressed rows.
        assert store([old[5]]) == (0, 1, [])  # redelivery: a duplicate
        conflict = store([(old[6][0], old[6][1] + 1)])
        assert conflict[:2] == (0, 0)
        assert len(conflict[2]) == 1  # a different value for a stored reading: dead letter
        # A late reading inside the compressed range is stored and rolled up (LATERAL queries,
        # DELETE/INSERT on hourly_energy).
        late = (old[-1][0] + timedelta(minutes=5), old[-1][1] + 0.5)
        assert store([late]) == (1, 0, [])
        assert count(ts_url, "SELECT count(*) FROM rollup_log") == 0
        everything = sorted([*old, *new, late])
        expected = compute_hourly([MeterReading(ts, v) for ts, v in everything]).hours
        stored = stored_hours(ts_url, device)
        assert set(stored) == set(expected)
        for hour, energy in expected.items():
            assert stored[hour][0] == pytest.approx(energy.energy_kwh, abs=1e-9), hour
        assert count(ts_url, "SELECT count(*) FROM readings") == len(everything)

        # Deleting the device cascades into the compressed chunks too.
        with psycopg.connect(ts_url) as conn:
            conn.execute("DELETE FROM devices WHERE id = %s", (device,))
        assert count(ts_url, "SELECT count(*) FROM readings") == 0
        assert count(ts_url, "SELECT count(*) FROM hourly_energy") == 0
    finally:
        storage.close()


@pytest.mark.xfail(
    strict=True,
    raises=psycopg.errors.FeatureNotSupported,
    reason="0002 uses compression and policies unconditionally; they are TSL-only features",
)
def test_migrations_run_on_an_apache_only_timescaledb(
    pg_server: PostgresServer, services_dir: Path, run_as: RunAs
) -> None:
    """An Apache-only build (or timescaledb.license = apache) must not stop EMS migrating."""
    require_timescale(pg_server.dsn("postgres"))
    base = services_dir / ("pg-apache-" + uuid.uuid4().hex[:8])
    server = PostgresServer(base / "data", free_port(), secrets.token_urlsafe(16), run_as)
    server.init()
    server.start(
        extra={
            "shared_preload_libraries": "timescaledb",
            "timescaledb.license": "apache",
            "timescaledb.max_background_workers": "0",
            "fsync": "off",
        }
    )
    try:
        server.create_database("ems")
        migrate(server.dsn("ems"))
    finally:
        server.stop()
