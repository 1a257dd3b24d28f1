"""Real services for the tests: a throwaway PostgreSQL and Mosquitto on free loopback ports.

The servers are started with the same code `ems up` uses (ems.postgres, ems.broker). PostgreSQL
runs once per session; every test that wants a database gets its own, cloned from a migrated
template (~0.1 s), so tests never see each other's rows. Mosquitto is cheap to start (~50 ms),
so every test that wants a broker gets its own: persistent sessions and retained messages of one
test cannot leak into the next.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.helpers import TEST_HUB_USER, TEST_PORTAL_USER
from ems.broker import ADMIN_USER, PORTAL_USER, MosquittoServer
from ems.postgres import PostgresServer
from ems.procs import RunAs, free_port
from migrations.runner import migrate
from portal.settings import PortalSettings

TEMPLATE_DB = "ems_template"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder says what kind of test it is; the marker lets `pytest -m unit` select it.
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in ("unit", "integration", "e2e"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def run_as() -> RunAs:
    return RunAs.detect()


@pytest.fixture(scope="session")
def services_dir(run_as: RunAs) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="ems-test-"))
    os.chmod(base, 0o755)  # noqa: S103 - the service user must be able to reach its directories
    run_as.give(base)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(services_dir: Path, run_as: RunAs) -> Iterator[PostgresServer]:
    server = PostgresServer(
        services_dir / "pg" / "data", free_port(), secrets.token_urlsafe(16), run_as
    )
    server.init()
    # Opt-in, e.g. EMS_TEST_PG_PRELOAD=timescaledb: the suite on an extension-enabled server.
    # In postgresql.conf, so tests that restart the server without settings keep it.
    if preload := os.environ.get("EMS_TEST_PG_PRELOAD"):
        with (server.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"shared_preload_libraries = '{preload}'\n")
            if "timescaledb" in preload:
                # No job schedulers: they connect to every database, the template too, and
                # CREATE DATABASE ... TEMPLATE refuses a template that has other sessions.
                conf.write("timescaledb.max_background_workers = 0\n")
    # Durability is not what the suite tests (except where a test says so): skip fsync.
    server.start(extra={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    server.create_database(TEMPLATE_DB)
    migrate(server.dsn(TEMPLATE_DB))
    yield server
    server.stop()


@pytest.fixture
def database_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database of its own for this test."""
    name = "t_" + uuid.uuid4().hex[:12]
    import psycopg

    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    yield pg_server.dsn(name)
    pg_server.drop_database(name)


class BrokerInfo:
    """A test broker: the service accounts of production (every one pinned to the client id of
    its own name: ``ems-hub-1``, ``ems-portal-1``…, see ems/broker.py), and two test-only
    accounts with the hub's and the portal's roles but no pinned client id, so that a test may
    open several connections at once under ids of its choosing: ``hub_user`` and
    ``portal_user``. What runs as production runs — the portal of ``portal_settings``, the
    client-id tests — uses the pinned accounts. Restarting the broker pins the test-only
    accounts too (it pins every account it finds), so tests that restart it connect under
    the production accounts."""

    def __init__(self, server: MosquittoServer) -> None:
        self.server = server
        self.host = server.host
        self.port = server.port
        self.hub_user = TEST_HUB_USER
        self.hub_password = server.hub_password
        self.portal_user = TEST_PORTAL_USER
        self.portal_password = server.portal_password
        # Operator tools' account (create_gateway), pinned like production's: "ems-admin".
        self.admin_user = ADMIN_USER
        asyncio.run(self._add_test_accounts())

    async def _add_test_accounts(self) -> None:
        from portal.broker_admin import BrokerAdmin

        async with BrokerAdmin(self.host, self.port, ADMIN_USER, self.portal_password) as admin:
            for username, role, password in (
                (TEST_HUB_USER, "hub", self.hub_password),
                (TEST_PORTAL_USER, "portal", self.portal_password),
            ):
                await admin.command(
                    command="createClient",
                    username=username,
                    password=password,
                    roles=[{"rolename": role}],
                )


@pytest.fixture
def broker(services_dir: Path, run_as: RunAs) -> Iterator[BrokerInfo]:
    """A Mosquitto of its own for this test, with the hub and portal service accounts."""
    base = services_dir / ("mq-" + uuid.uuid4().hex[:8])
    base.mkdir()
    server = MosquittoServer(
        base,
        free_port(),
        secrets.token_urlsafe(16),
        secrets.token_urlsafe(16),
        run_as,
        hubs=2,  # accounts for tests that run two hubs or portals as production does
        portals=2,
    )
    server.start()
    yield BrokerInfo(server)
    server.stop()


@pytest.fixture
def portal_settings(database_url: str, broker: BrokerInfo) -> PortalSettings:
    """Portal settings for this test's database and broker (replace fields as needed; a second
    replica needs the second replica's account, ``portal_user(2)``)."""
    return PortalSettings(
        database_url=database_url,
        jwt_secret=secrets.token_urlsafe(32),
        mqtt_username=PORTAL_USER,
        mqtt_password=broker.portal_password,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
    )


@pytest.fixture
def portal_admin(database_url: str) -> tuple[str, str]:
    """An administrator (username, password) created the way `ems admin create` does."""
    from ems.admin import ensure_admin

    username, password = "root", "root-password-1"
    ensure_admin(database_url, username, password)
    return username, password
