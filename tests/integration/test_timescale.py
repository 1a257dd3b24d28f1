"""Migrations on a PostgreSQL with TimescaleDB, under both of its licences.

TimescaleDB comes in two editions: the community (TSL) licence has compression and policies;
the Apache-2 edition, which Linux distributions package, has hypertables only. The same build
runs either, chosen by ``timescaledb.license`` in the server's configuration (it cannot change in
a session), so this module starts a server of its own per licence.

The normal case (CI, plain PostgreSQL without the extension) skips every test here, saying so.
They run wherever the timescaledb extension is installed into the PostgreSQL the suite uses
(``pg_config --pkglibdir`` and ``--sharedir``); the community tests also need its TSL module.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from contract.payloads import Reading
from devkit.hubkit import add_devices, count, stored_hours
from devkit.migrationkit import migrate_with_first_0002
from ems.postgres import PostgresServer
from ems.procs import RunAs, free_port
from hub.batch import PreparedBatch
from hub.energy import MeterReading, compute_hourly
from hub.rollup_store import rollup_pending
from hub.storage import PgStorage
from migrations.runner import SQL_DIR, migrate
from tests.conftest import TEMPLATE_DB

NOT_INSTALLED = "timescaledb extension is not installed on this PostgreSQL"
NO_TSL = (
    "this TimescaleDB is an Apache-only build (no timescaledb-tsl module):"
    " the community licence cannot be tested"
)
COMMUNITY, APACHE = "timescale", "apache"
SKIPPED = (
    "timescale_policies: TimescaleDB apache edition: compression and retention policies skipped"
    " (need the community licence)"
)
SET_UP = (
    "timescale_policies: TimescaleDB community edition: readings got compression by device_id,"
    " compression policy (after 30 days), retention policy (5 years)"
)


@pytest.fixture(scope="module")
def timescale_build(pg_server: PostgresServer) -> Path:
    """The server's library directory, when the extension is installed (else skip)."""
    with psycopg.connect(pg_server.dsn("postgres")) as conn:
        available = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        libdir = conn.execute("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'").fetchone()
    if not available or not available[0] or not libdir:
        pytest.skip(NOT_INSTALLED)
    return Path(str(libdir[0]))


def start_timescale(server: PostgresServer, licence: str) -> None:
    server.start(
        extra={
            "shared_preload_libraries": "timescaledb",
            "timescaledb.license": licence,
            # No job scheduler: the tests run jobs by hand, and CREATE DATABASE ... TEMPLATE
            # refuses a template that a scheduler has a session in.
            "timescaledb.max_background_workers": "0",
            "timescaledb.telemetry_level": "off",
            "fsync": "off",
            "synchronous_commit": "off",
        }
    )


@dataclass
class Edition:
    """A running server under one licence, with a migrated template and what migrating said."""

    licence: str
    server: PostgresServer
    said: list[str] = field(default_factory=list)

    def database(self) -> str:
        name = "ts_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        return name


def new_server(services_dir: Path, run_as: RunAs, licence: str) -> PostgresServer:
    base = services_dir / f"pg-{licence}-{uuid.uuid4().hex[:8]}"
    server = PostgresServer(base / "data", free_port(), secrets.token_urlsafe(16), run_as)
    server.init()
    start_timescale(server, licence)
    return server


def edition(services_dir: Path, run_as: RunAs, licence: str) -> Iterator[Edition]:
    server = new_server(services_dir, run_as, licence)
    try:
        server.create_database(TEMPLATE_DB)
        ed = Edition(licence, server)
        migrate(server.dsn(TEMPLATE_DB), progress=ed.said.append)
        yield ed
    finally:
        server.stop()


@pytest.fixture(scope="module")
def community(timescale_build: Path, services_dir: Path, run_as: RunAs) -> Iterator[Edition]:
    if not list(timescale_build.glob("timescaledb-tsl-*.so")):
        pytest.skip(NO_TSL)
    yield from edition(services_dir, run_as, COMMUNITY)


@pytest.fixture(scope="module")
def apache(timescale_build: Path, services_dir: Path, run_as: RunAs) -> Iterator[Edition]:
    yield from edition(services_dir, run_as, APACHE)


def database_of(ed: Edition) -> Iterator[str]:
    name = ed.database()
    yield ed.server.dsn(name)
    ed.server.drop_database(name)


@pytest.fixture
def ts_url(community: Edition) -> Iterator[str]:
    """A migrated database of this test's own, under the community licence."""
    yield from database_of(community)


@pytest.fixture
def apache_url(apache: Edition) -> Iterator[str]:
    """A migrated database of this test's own, under the Apache licence."""
    yield from database_of(apache)


@pytest.fixture(params=[COMMUNITY, APACHE])
def any_edition(request: pytest.FixtureRequest) -> Edition:
    """Each licence in turn: for what every edition has."""
    ed: Edition = request.getfixturevalue("community" if request.param == COMMUNITY else "apache")
    return ed


@pytest.fixture
def any_url(any_edition: Edition) -> Iterator[str]:
    """A migrated database of this test's own, under each licence in turn."""
    yield from database_of(any_edition)


def one(dsn: str, sql: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None, sql
    return row


# Every edition: the extension, readings as a hypertable, its indexes and scans.


def test_migration_creates_the_extension(any_url: str) -> None:
    assert count(any_url, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 1


def test_readings_is_a_hypertable_on_ts_in_week_chunks(any_url: str) -> None:
    (dimension,) = one(
        any_url,
        "SELECT primary_dimension FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = 'public' AND hypertable_name = 'readings'",
    )
    assert dimension == "ts"
    (interval,) = one(
        any_url,
        "SELECT time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_name = 'readings' AND column_name = 'ts'",
    )
    assert interval == timedelta(days=7)
    # Only readings: hourly_energy and the rest stay plain tables.
    assert count(any_url, "SELECT count(*) FROM timescaledb_information.hypertables") == 1


def test_readings_keep_only_their_primary_key_index(any_url: str) -> None:
    """create_hypertable's default (ts DESC) index is dropped again (migration 0005)."""
    with psycopg.connect(any_url) as conn:
        names = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = 'readings'"
        ).fetchall()
    assert names == [("readings_pkey",)]


def test_device_time_range_scans_use_the_chunks_primary_keys(any_url: str) -> None:
    (device,) = add_devices(any_url, 1)
    with psycopg.connect(any_url) as conn:
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


def test_existing_readings_are_moved_into_chunks(any_edition: Edition, tmp_path: Path) -> None:
    """A database that has readings before 0002 runs (migrate_data => true)."""
    ed = any_edition
    name = "ts_" + uuid.uuid4().hex[:12]
    ed.server.create_database(name)
    dsn = ed.server.dsn(name)
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
        ed.server.drop_database(name)


def test_migrating_again_applies_and_says_nothing_new(any_edition: Edition, any_url: str) -> None:
    apache = any_edition.licence == APACHE
    said: list[str] = []
    assert migrate(any_url, progress=said.append) == []
    # Under the Apache licence the step says again what it skips; nothing else is said.
    assert said == ([SKIPPED] if apache else [])
    jobs = "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'readings'"
    assert count(any_url, jobs) == (0 if apache else 2)


# The community (TSL) licence: compression and retention.


def test_community_migration_says_what_it_set_up(community: Edition) -> None:
    assert SET_UP in community.said
    assert not [line for line in community.said if "skipped" in line or "WARNING" in line]


def test_readings_compress_segmented_by_device_ordered_by_ts(ts_url: str) -> None:
    (enabled,) = one(
        ts_url,
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'readings'",
    )
    assert enabled is True
    with psycopg.connect(ts_url) as conn:
        rows = conn.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'readings'"
            " ORDER BY segmentby_column_index NULLS LAST, orderby_column_index"
        ).fetchall()
    assert rows == [("device_id", 1, None, None), ("ts", None, 1, True)]


def test_compression_and_retention_policies_are_scheduled(ts_url: str) -> None:
    policies = policies_of(ts_url)
    assert set(policies) == {"policy_compression", "policy_retention"}
    compression, retention = policies["policy_compression"], policies["policy_retention"]
    assert compression[0]["compress_after"] == "30 days"
    assert retention[0]["drop_after"] == "5 years"
    assert compression[1] and retention[1]


def policies_of(dsn: str) -> dict[str, tuple[dict[str, object], bool]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT proc_name, config, scheduled FROM timescaledb_information.jobs"
            " WHERE hypertable_name = 'readings' ORDER BY proc_name"
        ).fetchall()
    return {str(name): (config, bool(scheduled)) for name, config, scheduled in rows}


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
        jobs = job_ids(ts_url)
        conn.execute("CALL run_job(%s)", (jobs["policy_retention"],))
        conn.execute("CALL run_job(%s)", (jobs["policy_compression"],))
        kept = [r[0] for r in conn.execute("SELECT energy_kwh FROM readings ORDER BY ts")]
        chunks = conn.execute(
            "SELECT range_end < now() - interval '30 days', is_compressed"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
        ).fetchall()
    assert kept == [1.0, 0.0]  # the six-year-old reading is gone
    assert sorted(chunks) == [(False, False), (True, True)]


def test_a_database_that_ran_the_first_0002_keeps_its_policies(
    community: Edition, tmp_path: Path
) -> None:
    """Where 0002's first text set compression and policies, the step finds them in place."""
    name = "ts_" + uuid.uuid4().hex[:12]
    community.server.create_database(name)
    dsn = community.server.dsn(name)
    try:
        migrate_with_first_0002(dsn, tmp_path)
        jobs_before = job_ids(dsn)
        assert set(jobs_before) == {"policy_compression", "policy_retention"}
        said: list[str] = []
        assert migrate(dsn, progress=said.append) == []
        assert said == [
            "migration 0002_timescale: recorded its revised text (an earlier one ran here)"
        ]
        assert job_ids(dsn) == jobs_before
    finally:
        community.server.drop_database(name)


def job_ids(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT proc_name, job_id FROM timescaledb_information.jobs"
            " WHERE hypertable_name = 'readings'"
        ).fetchall()
    return {str(name): int(job) for name, job in rows}


class HubWrites:
    """The hub's own SQL for one device: a batch commit followed by its rollup."""

    def __init__(self, dsn: str) -> None:
        self.storage = PgStorage(dsn)
        self.registry = {d.device_id: d for d in self.storage.load_devices()}

    def store(
        self, device: uuid.UUID, points: list[tuple[datetime, float]]
    ) -> tuple[int, int, list[str]]:
        batch = PreparedBatch(readings=[Reading(device, ts, v) for ts, v in points])
        out = self.storage.commit_batch(batch)
        rollup_pending(self.storage.conn, self.registry.get)
        return out.stored, out.duplicates, [d.reason for d in out.dead]

    def close(self) -> None:
        self.storage.close()


def assert_rolled_up(dsn: str, device: uuid.UUID, points: list[tuple[datetime, float]]) -> None:
    assert count(dsn, "SELECT count(*) FROM rollup_log") == 0
    expected = compute_hourly([MeterReading(ts, v) for ts, v in sorted(points)]).hours
    stored = stored_hours(dsn, device)
    assert set(stored) == set(expected)
    for hour, energy in expected.items():
        assert stored[hour][0] == pytest.approx(energy.energy_kwh, abs=1e-9), hour
    assert count(dsn, "SELECT count(*) FROM readings") == len(points)


def assert_device_delete_cascades(dsn: str, device: uuid.UUID) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM devices WHERE id = %s", (device,))
    assert count(dsn, "SELECT count(*) FROM readings") == 0
    assert count(dsn, "SELECT count(*) FROM hourly_energy") == 0


def test_hub_sql_works_on_compressed_chunks(ts_url: str) -> None:
    """Duplicates, conflicts and late readings in a compressed chunk; rollup; device delete."""
    (device,) = add_devices(ts_url, 1)
    hour0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old = [(hour0 - timedelta(days=60) + timedelta(minutes=10 * i), 100.0 + i) for i in range(36)]
    new = [(hour0 - timedelta(days=1) + timedelta(minutes=10 * i), 500.0 + i) for i in range(12)]
    hub = HubWrites(ts_url)
    try:
        assert hub.store(device, old + new) == (len(old) + len(new), 0, [])
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
        assert hub.store(device, [old[5]]) == (0, 1, [])  # redelivery: a duplicate
        conflict = hub.store(device, [(old[6][0], old[6][1] + 1)])
        assert conflict[:2] == (0, 0)
        assert len(conflict[2]) == 1  # a different value for a stored reading: dead letter
        # A late reading inside the compressed range is stored and rolled up (LATERAL queries,
        # DELETE/INSERT on hourly_energy).
        late = (old[-1][0] + timedelta(minutes=5), old[-1][1] + 0.5)
        assert hub.store(device, [late]) == (1, 0, [])
        assert_rolled_up(ts_url, device, [*old, *new, late])
        # Deleting the device cascades into the compressed chunks too.
        assert_device_delete_cascades(ts_url, device)
    finally:
        hub.close()


# The Apache-2 edition (timescaledb.license = apache): hypertables, no compression or policies.


def test_migrations_run_on_an_apache_only_timescaledb(apache_url: str) -> None:
    """The distributions' edition migrates: readings is a hypertable, without what needs TSL."""
    (enabled,) = one(
        apache_url,
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'readings'",
    )
    assert enabled is False
    assert (
        count(
            apache_url,
            "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'readings'",
        )
        == 0
    )
    assert count(apache_url, "SELECT count(*) FROM schema_migrations") == len(
        list(SQL_DIR.glob("*.sql"))
    )


def test_apache_migration_says_compression_and_retention_were_skipped(apache: Edition) -> None:
    assert SKIPPED in apache.said
    assert not [line for line in apache.said if "WARNING" in line]


def test_hub_sql_works_on_an_apache_hypertable(apache_url: str) -> None:
    """Duplicates, conflicts and late readings across chunks; rollup; device delete."""
    (device,) = add_devices(apache_url, 1)
    hour0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old = [(hour0 - timedelta(days=20) + timedelta(minutes=10 * i), 100.0 + i) for i in range(36)]
    new = [(hour0 - timedelta(days=1) + timedelta(minutes=10 * i), 500.0 + i) for i in range(12)]
    hub = HubWrites(apache_url)
    try:
        assert hub.store(device, old + new) == (len(old) + len(new), 0, [])
        assert count(apache_url, "SELECT count(*) FROM show_chunks('readings')") >= 2
        assert hub.store(device, [old[5]]) == (0, 1, [])
        conflict = hub.store(device, [(old[6][0], old[6][1] + 1)])
        assert conflict[:2] == (0, 0)
        assert len(conflict[2]) == 1
        late = (old[-1][0] + timedelta(minutes=5), old[-1][1] + 0.5)
        assert hub.store(device, [late]) == (1, 0, [])
        assert_rolled_up(apache_url, device, [*old, *new, late])
        assert_device_delete_cascades(apache_url, device)
    finally:
        hub.close()


# The licence is a server setting: it can change after the migrations ran.


@pytest.fixture
def switching_server(
    timescale_build: Path, services_dir: Path, run_as: RunAs
) -> Iterator[PostgresServer]:
    if not list(timescale_build.glob("timescaledb-tsl-*.so")):
        pytest.skip(NO_TSL)
    server = new_server(services_dir, run_as, APACHE)
    yield server
    server.stop()


def relicense(server: PostgresServer, licence: str) -> None:
    server.stop()
    start_timescale(server, licence)


def test_apache_database_gets_its_policies_once_the_community_licence_is_on(
    switching_server: PostgresServer,
) -> None:
    switching_server.create_database("ems")
    dsn = switching_server.dsn("ems")
    said: list[str] = []
    migrate(dsn, progress=said.append)
    assert SKIPPED in said and job_ids(dsn) == {}
    relicense(switching_server, COMMUNITY)
    said.clear()
    assert migrate(dsn, progress=said.append) == []
    assert said == [SET_UP]
    assert set(policies_of(dsn)) == {"policy_compression", "policy_retention"}
    said.clear()
    assert migrate(dsn, progress=said.append) == []
    assert said == []


def test_community_database_under_the_apache_licence_is_warned(
    switching_server: PostgresServer,
) -> None:
    """Policies and compressed chunks left from the community licence cannot work under Apache."""
    relicense(switching_server, COMMUNITY)
    switching_server.create_database("ems")
    dsn = switching_server.dsn("ems")
    migrate(dsn)
    relicense(switching_server, APACHE)
    said: list[str] = []
    assert migrate(dsn, progress=said.append) == []
    assert said == [
        SKIPPED,
        "timescale_policies: WARNING: readings has compression or retention set up under the"
        " community licence, which this edition cannot run (nor read compressed chunks):"
        " set timescaledb.license = 'timescale' again",
    ]
