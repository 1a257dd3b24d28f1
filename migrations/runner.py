"""Forward-only migrations: numbered SQL files applied in order, each in its own transaction.

Applied versions are recorded in ``schema_migrations`` with a checksum, so editing a migration
that already ran is reported instead of silently ignored. The one exception is a revision that
names the checksum it replaces (a ``-- ems:replaces <sha256>`` line): its author states that on a
database where the earlier text ran, the schema the revision and the migrations after it leave
is the same, and the runner records the new checksum. An advisory lock serialises runners
(several replicas starting at once apply each migration exactly once).

After the migrations, the runner runs every step in ``steps/`` (idempotent SQL, in name order),
every time: a step adapts the schema to what the server offers now — settings such as
``timescaledb.license`` can change after a migration ran, and a migration never runs again.
NOTICEs and WARNINGs raised by migrations and steps are passed to ``progress``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.errors import Diagnostic

SQL_DIR = Path(__file__).resolve().parent / "sql"
STEPS_DIR = Path(__file__).resolve().parent / "steps"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STEP_NAME = re.compile(r"^[a-z0-9_]+\.sql$")
_REPLACES = re.compile(r"^-- ems:replaces ([0-9a-f]{64})\s*$", re.MULTILINE)
_LOCK_KEY = 0x454D53  # "EMS"
_SAID = ("NOTICE", "WARNING")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def replaces(self) -> frozenset[str]:
        """Checksums of earlier texts of this migration that this revision stands in for."""
        return frozenset(_REPLACES.findall(self.sql))


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    sql: str = field(repr=False)


def discover(directory: Path = SQL_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def discover_steps(directory: Path = STEPS_DIR) -> list[Step]:
    found: list[Step] = []
    for path in sorted(directory.glob("*.sql")):
        if not _STEP_NAME.match(path.name):
            raise MigrationError(f"{path.name}: step files are named name.sql")
        found.append(Step(path.stem, path.read_text()))
    return found


def migrate(
    dsn: str,
    *,
    directory: Path = SQL_DIR,
    steps: Path = STEPS_DIR,
    progress: Callable[[str], None] | None = None,
) -> list[Migration]:
    """Apply what is missing, run the steps; return what was applied (empty when up to date)."""
    say = progress or (lambda _msg: None)
    applied_now: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Only what a migration or step raises is passed on, not the runner's own statements'
        # chatter (CREATE TABLE IF NOT EXISTS schema_migrations says "already exists" each run).
        speaker: list[str] = []

        def on_notice(diag: Diagnostic) -> None:
            if speaker and diag.severity_nonlocalized in _SAID and diag.message_primary:
                prefix = "" if diag.severity_nonlocalized == "NOTICE" else "WARNING: "
                say(f"{speaker[0]}: {prefix}{diag.message_primary}")

        conn.add_notice_handler(on_notice)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
            done = {int(r[0]): (str(r[1]), str(r[2])) for r in rows}
            for migration in discover(directory):
                label = f"{migration.version:04d}_{migration.name}"
                if migration.version in done:
                    name, checksum = done[migration.version]
                    if checksum == migration.checksum:
                        continue
                    if checksum not in migration.replaces:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{name} was changed after it was "
                            "applied; migrations are forward-only — add a new one instead"
                        )
                    conn.execute(
                        "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
                        (migration.checksum, migration.version),
                    )
                    say(f"migration {label}: recorded its revised text (an earlier one ran here)")
                    continue
                say(f"applying migration {label}")
                speaker[:] = [label]
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                speaker.clear()
                applied_now.append(migration)
            for step in discover_steps(steps):
                speaker[:] = [step.name]
                with conn.transaction():
                    conn.execute(step.sql.encode())
                speaker.clear()
        finally:
            speaker.clear()
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def current_version(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0
