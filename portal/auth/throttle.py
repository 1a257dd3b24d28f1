"""Sign-in throttling: the attacker is slowed down, never the account's owner.

Failures are counted per (address, user name) and per address, in PostgreSQL
(``login_failures``) so every portal replica sees the same counts. Limiting by user name alone
would let anyone lock a user out — ten wrong passwords for ``admin`` from anywhere and the real
administrator could not sign in from anywhere either. Keyed by address, a guesser is held back
while the owner, signing in from their own address, is never refused.

- A pair (address, user name) gets ``BACKOFF_AFTER`` free failures; after that each attempt must
  wait ``login_backoff_s`` × 2^(failures − BACKOFF_AFTER) since the previous failure (capped at
  the window), and at ``login_max_failures`` the pair is refused until failures leave the window.
- An address, whatever names it tries (password spraying), is refused at
  ``login_address_max_failures`` failures in the window. Self-registrations count here too.

The address is the peer's, or the one a trusted proxy forwarded (``PORTAL_TRUSTED_PROXIES``,
``portal.app``); a client cannot choose it by sending X-Forwarded-For.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.settings import PortalSettings

BACKOFF_AFTER = 3

_COUNTS = text(
    """
    SELECT count(*) FILTER (WHERE lower(username) = :key) AS pair,
           extract(epoch FROM now() - max(at) FILTER (WHERE lower(username) = :key)) AS pair_last,
           extract(epoch FROM now() - min(at) FILTER (WHERE lower(username) = :key))
               AS pair_oldest,
           count(*) AS address,
           extract(epoch FROM now() - min(at)) AS address_oldest
    FROM login_failures
    WHERE address = :address AND at > now() - make_interval(secs => :window)
    """
)


@dataclass(frozen=True, slots=True)
class Failures:
    """Recent failures from one address: of one user name (pair) and of any (address).

    Ages are seconds since the newest/oldest failure in the window (None without one)."""

    pair: int = 0
    pair_last_age_s: float | None = None
    pair_oldest_age_s: float | None = None
    address: int = 0
    address_oldest_age_s: float | None = None


def wait_s(failures: Failures, settings: PortalSettings, *, backoff: bool = True) -> int | None:
    """Whole seconds this address must wait before trying this user name again, or None."""
    window = settings.login_window_s
    waits: list[float] = []
    if failures.address >= settings.login_address_max_failures:
        waits.append(window - (failures.address_oldest_age_s or 0.0))
    if failures.pair >= settings.login_max_failures:
        waits.append(window - (failures.pair_oldest_age_s or 0.0))
    elif backoff and failures.pair >= BACKOFF_AFTER and settings.login_backoff_s > 0:
        delay = min(window, settings.login_backoff_s * 2 ** (failures.pair - BACKOFF_AFTER))
        waits.append(delay - (failures.pair_last_age_s or 0.0))
    longest = max(waits, default=0.0)
    return max(1, math.ceil(longest)) if longest > 0 else None


async def recent_failures(
    session: AsyncSession, settings: PortalSettings, address: str, key: str
) -> Failures:
    row = (
        await session.execute(
            _COUNTS, {"key": key, "address": address, "window": settings.login_window_s}
        )
    ).one()
    return Failures(
        pair=row.pair,
        pair_last_age_s=_seconds(row.pair_last),
        pair_oldest_age_s=_seconds(row.pair_oldest),
        address=row.address,
        address_oldest_age_s=_seconds(row.address_oldest),
    )


def _seconds(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
