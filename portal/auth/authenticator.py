"""Token → current user, with revocation checked on every request.

One query per request answers both "who is this" and "was this token revoked" (signed out, or
issued before the user's last password change: its ``gen`` claim is behind the user's
``token_generation``); the user row is
needed anyway (a deleted user's token must stop working, a changed role must take effect). A
small TTL cache keyed by token id absorbs bursts (a page and its assets, a polling client).
Correctness: a logout, user change or deletion on this replica evicts the entries at once; on
another replica a cached entry lives at most ``ttl_s`` (default 1 s). A revoked token id is
remembered until the token expires, so it never needs the database again.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from portal.auth.schemas import CurrentUser
from portal.auth.tables import revoked_tokens
from portal.auth.tokens import TokenClaims, decode_token
from portal.users.tables import users

_MAX_ENTRIES = 10_000


@dataclass(slots=True)
class _Entry:
    user: CurrentUser | None  # None: revoked, or the user is gone
    fresh_until: float


class Authenticator:
    def __init__(self, engine: AsyncEngine, secret: str, *, ttl_s: float = 1.0) -> None:
        self._engine = engine
        self._secret = secret
        self._ttl_s = ttl_s
        self._cache: dict[str, _Entry] = {}
        self._revoked: dict[str, datetime] = {}

    async def authenticate(self, token: str) -> tuple[CurrentUser, TokenClaims] | None:
        claims = decode_token(self._secret, token)
        if claims is None or claims.jti in self._revoked:
            return None
        now = time.monotonic()
        entry = self._cache.get(claims.jti)
        if entry is None or entry.fresh_until <= now:
            entry = _Entry(await self._load(claims), now + self._ttl_s)
            if self._ttl_s > 0:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[claims.jti] = entry
        if entry.user is None:
            return None
        return entry.user, claims

    async def _load(self, claims: TokenClaims) -> CurrentUser | None:
        revoked = exists().where(revoked_tokens.c.jti == claims.jti)
        query = select(
            users.c.id,
            users.c.username,
            users.c.name,
            users.c.email,
            users.c.role,
            users.c.time_zone,
            users.c.token_generation,
            revoked.label("revoked"),
        ).where(users.c.id == claims.user_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        # A token from before the user's last password change is dead for good, like a revoked one.
        if row is None or row.revoked or row.token_generation != claims.generation:
            if row is not None:
                self.remember_revoked(claims.jti, claims.expires_at)
            return None
        return CurrentUser(
            id=row.id,
            username=row.username,
            name=row.name,
            email=row.email,
            role=row.role,
            time_zone=row.time_zone,
        )

    def remember_revoked(self, jti: str, expires_at: datetime) -> None:
        if len(self._revoked) >= _MAX_ENTRIES:
            now = datetime.now(UTC)
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}
            if len(self._revoked) >= _MAX_ENTRIES:
                self._revoked.clear()
        self._revoked[jti] = expires_at
        self._cache.pop(jti, None)

    def forget_user(self, user_id: uuid.UUID) -> None:
        """The user changed or was deleted: their cached sessions must be looked up again."""
        stale = [jti for jti, e in self._cache.items() if e.user and e.user.id == user_id]
        for jti in stale:
            del self._cache[jti]
