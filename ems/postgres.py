"""A private PostgreSQL server: initdb into a directory, run as a child, stop cleanly."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ems.procs import RunAs, StackError, ensure_port_free, stop_process, wait_until

SUPERUSER = "ems"


def pg_bindir() -> Path:
    """Where the server binaries are: EMS_PG_BIN, Debian's layout (newest), or PATH."""
    if env := os.environ.get("EMS_PG_BIN"):
        return Path(env)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise StackError(
        "PostgreSQL server binaries not found — run `make install` (installs postgresql)"
    )


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``."""

    data_dir: Path
    port: int
    password: str
    run_as: RunAs
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "pg-socket"

    def dsn(self, dbname: str = "ems") -> str:
        return (
            f"postgresql://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{dbname}"
            "?connect_timeout=5"
        )

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        """initdb when the directory holds no cluster yet; True if one was created."""
        if self.initialized():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.data_dir.parent / ".pg-pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self.run_as.give(self.data_dir)
        self.run_as.give(self.socket_dir)
        self.run_as.give(pwfile)
        try:
            self.run_as.run(
                [
                    str(pg_bindir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        return True

    def start(self, *, extra: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        ensure_port_free(self.port, "PostgreSQL", self.host)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.run_as.give(self.socket_dir)
        self.log_path.touch()
        self.run_as.give(self.log_path)
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            "shared_buffers": "256MB",
            "fsync": "on",
            "synchronous_commit": "on",
            **(extra or {}),
        }
        argv = [str(pg_bindir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.proc = self.run_as.popen(argv, log=self.log_path, cwd=self.data_dir)
        wait_until(
            self._accepts,
            timeout=timeout,
            what=f"PostgreSQL on {self.host}:{self.port}",
            proc=self.proc,
            log=self.log_path,
        )

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> bool:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, never user input
            return True

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): open transactions roll back, committed data is safe."""
        if self.proc is not None:
            stop_process(self.proc, sig=signal.SIGINT, timeout=timeout)
            self.proc = None

    def kill(self) -> None:
        """Immediate shutdown (SIGQUIT) — for tests of the database going away."""
        if self.proc is not None:
            stop_process(self.proc, sig=signal.SIGQUIT, timeout=10)
            self.proc = None
