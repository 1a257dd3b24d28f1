"""Stored energy as the dashboards read it: finite and bounded, whatever a row holds; and the
hourly and readings reads the API and the CSV export share.

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

from sqlalchemy import text

SHOWN_MAX: Final = 1e300


def shown(column: str) -> str:
    """SQL for ``column`` clamped into ±SHOWN_MAX, NULL kept (``greatest`` would drop it)."""
    bound = f"{SHOWN_MAX!r}::float8"
    return (
        f"(CASE WHEN {column} IS NULL THEN NULL"
        f" ELSE least(greatest({column}, -{bound}), {bound}) END)"
    )


# The two reads the API and the CSV export share, written once so both show the same numbers:
# a device's stored hours and its raw readings in [lo, hi), in time order.
HOURS = text(
    f"SELECT hour, {shown('energy_kwh')} AS energy_kwh, quality, readings FROM hourly_energy"
    " WHERE device_id = :device_id AND hour >= :lo AND hour < :hi ORDER BY hour"
)
_READINGS = (
    f"SELECT ts, {shown('energy_kwh')} AS energy_kwh, {shown('power_w')} AS power_w, seq"
    " FROM readings WHERE device_id = :device_id AND ts >= :lo AND ts < :hi ORDER BY ts"
)
READINGS = text(_READINGS)  # all of them: the export streams them
READINGS_PAGE = text(f"{_READINGS} LIMIT :limit")  # one page of the API
