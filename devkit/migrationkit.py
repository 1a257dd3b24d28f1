"""Test kit for migrations: a database as deployments left it before 0002 was revised."""

from __future__ import annotations

import shutil
from pathlib import Path

from migrations.runner import SQL_DIR, Migration, migrate

# The first text of migrations/sql/0002_timescale.sql, byte for byte (its checksum is what
# databases that ran it have recorded): readings got compression and both policies in 0002.
TEST_DATA = Path(__file__).resolve().parent.parent / "tests" / "integration" / "data"
FIRST_0002 = TEST_DATA / "0002_timescale_first_text.sql"


def migrate_with_first_0002(dsn: str, workdir: Path) -> list[Migration]:
    """Every migration of today, with 0002 as it first was: the newest deployments' state."""
    before = workdir / "sql-before-0002-revision"
    before.mkdir()
    for path in SQL_DIR.glob("*.sql"):
        shutil.copyfile(path, before / path.name)
    shutil.copyfile(FIRST_0002, before / "0002_timescale.sql")
    no_steps = workdir / "no-steps"  # there were none then
    no_steps.mkdir()
    return migrate(dsn, directory=before, steps=no_steps)
