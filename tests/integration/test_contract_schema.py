"""The database keeps its CHECK constraints on the contract's enumerations; this proves the
migrated schema and ``contract.enums`` list the same values, so neither can gain one alone."""

from __future__ import annotations

import re

import psycopg
import pytest

from contract.enums import (
    ALERT_KINDS,
    ALERT_STATUSES,
    HOURLY_ALERT_KINDS,
    METER_KINDS,
    QUALITIES,
    ROLES,
    STATUS_STATES,
)

pytestmark = pytest.mark.integration

CHECKS = """
SELECT c.conname, pg_get_constraintdef(c.oid),
       array(SELECT a.attname::text FROM unnest(c.conkey) k
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k ORDER BY a.attname)
FROM pg_constraint c
WHERE c.contype = 'c' AND c.conrelid = %s::regclass
"""


def check_values(
    conn: psycopg.Connection[tuple[object, ...]], table: str, *columns: str
) -> set[str]:
    """The string literals of the one CHECK constraint of ``table`` over exactly ``columns``
    that lists values (``col IN (…)``, which PostgreSQL stores as ``= ANY (ARRAY[…])``)."""
    found = [
        definition
        for _, definition, cols in conn.execute(CHECKS, (table,)).fetchall()
        if cols == sorted(columns) and "ANY (ARRAY[" in str(definition)
    ]
    assert len(found) == 1, f"{table}{columns}: expected one value-list CHECK, found {found}"
    return set(re.findall(r"'([^']*)'::text", str(found[0])))


@pytest.mark.parametrize(
    ("table", "columns", "values"),
    [
        ("alerts", ("kind",), ALERT_KINDS),
        ("alerts", ("hour", "kind"), HOURLY_ALERT_KINDS),
        ("alerts", ("status",), ALERT_STATUSES),
        ("devices", ("meter_kind",), METER_KINDS),
        ("device_status_history", ("state",), STATUS_STATES),
        ("hourly_energy", ("quality",), QUALITIES),
        ("users", ("role",), ROLES),
        ("messages", ("sender_role",), ROLES),
    ],
)
def test_the_schema_checks_the_values_of_the_contract_enumerations(
    database_url: str, table: str, columns: tuple[str, ...], values: tuple[str, ...]
) -> None:
    with psycopg.connect(database_url) as conn:
        assert check_values(conn, table, *columns) == set(values)
    assert len(set(values)) == len(values)
