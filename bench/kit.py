"""Shared by the benchmarks: a throwaway PostgreSQL + Mosquitto, as the tests start them."""

from __future__ import annotations

import atexit
import os
import resource
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ems.broker import ADMIN_USER, HUB_USER, PORTAL_USER, MosquittoServer
from ems.postgres import PostgresServer
from ems.procs import RunAs, free_port
from migrations.runner import migrate


def reap_at_exit(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Kill ``proc`` when this script exits if it still runs: a benchmark that fails half-way
    must not leave a hub behind, retrying a broker that is gone and loading the next run."""
    atexit.register(lambda: proc.poll() is None and proc.kill())
    return proc


@dataclass
class BenchBroker:
    server: MosquittoServer
    host: str
    port: int
    hub_user: str
    hub_password: str
    portal_user: str
    portal_password: str
    # Operator tools' account (create_gateway, observers): the portals' own accounts are pinned
    # to the client ids the running portals hold.
    admin_user: str = ADMIN_USER


@dataclass
class Services:
    base: Path
    pg: PostgresServer
    broker: BenchBroker

    @property
    def dsn(self) -> str:
        return self.pg.dsn("ems")


def raise_fd_limit(target: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, target), hard), hard))


@contextmanager
def services(*, durable: bool = True) -> Iterator[Services]:
    """PostgreSQL (fsync on unless ``durable`` is False) and Mosquitto on free ports."""
    raise_fd_limit()
    run_as = RunAs.detect()
    base = Path(tempfile.mkdtemp(prefix="ems-bench-"))
    os.chmod(base, 0o755)  # noqa: S103 - the service user must reach its directories
    run_as.give(base)
    pg = PostgresServer(base / "pg" / "data", free_port(), secrets.token_urlsafe(16), run_as)
    pg.init()
    pg.start(extra={} if durable else {"fsync": "off", "synchronous_commit": "off"})
    pg.create_database("ems")
    migrate(pg.dsn("ems"))
    hub_pw, portal_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    # Every account is pinned to the client id of its name: two hubs' and portals' worth.
    mq = MosquittoServer(base / "mq", free_port(), hub_pw, portal_pw, run_as, hubs=2, portals=2)
    mq.start()
    try:
        yield Services(
            base,
            pg,
            BenchBroker(mq, mq.host, mq.port, HUB_USER, hub_pw, PORTAL_USER, portal_pw),
        )
    finally:
        mq.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
