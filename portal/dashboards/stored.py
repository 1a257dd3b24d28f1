"""Stored energy as the dashboards read it: finite and bounded, whatever a row holds.

The hub refuses registers above 1e9 kWh and increases implying more power than any meter draws
(contract.readings), so nothing it stores now comes near these bounds. Rows stored before it did may
hold anything a float8 can: 1e308 (two of them overflow PostgreSQL's ``sum``, which failed the
request), even Infinity or NaN (JSON has no such numbers: a schema's ``float`` became ``null``).
So every energy or power value the dashboards read passes through ``shown``: clamped into
±``SHOWN_MAX`` (NaN to the top, where PostgreSQL sorts it), NULL kept. Sums are of shown values:
the most a request adds up is 1,098 days of 25 hours, 2.7e304, still finite.
"""

from __future__ import annotations

from typing import Final

SHOWN_MAX: Final = 1e300


def shown(column: str) -> str:
    """SQL for ``column`` clamped into ±SHOWN_MAX, NULL kept (``greatest`` would drop it)."""
    bound = f"{SHOWN_MAX!r}::float8"
    return (
        f"(CASE WHEN {column} IS NULL THEN NULL"
        f" ELSE least(greatest({column}, -{bound}), {bound}) END)"
    )
