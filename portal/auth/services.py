"""Login (rate-limited), logout (revocation) and self-registration."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.services import record
from portal.auth.authenticator import Authenticator
from portal.auth.passwords import hash_password, verify_password
from portal.auth.schemas import CurrentUser, RegisterRequest
from portal.auth.tables import login_failures, revoked_tokens
from portal.auth.throttle import recent_failures, wait_s
from portal.auth.tokens import IssuedToken, TokenClaims, issue_token
from portal.errors import Forbidden, NotAuthenticated, TooManyRequests
from portal.settings import PortalSettings
from portal.users.tables import users

WRONG_CREDENTIALS = "wrong username or password"
REGISTRATION_RECEIVED = (
    "registration received: sign in with the user name and password you chose; if that fails, "
    "the user name was not available — register with another one"
)
# login_failures.username of a self-registration: not a user name (it has a space and
# parentheses, which user names cannot), so it never counts against a user.
REGISTRATION_ATTEMPT = "(self registration)"


@functools.cache
def _dummy_hash() -> str:
    # Unknown usernames cost one verification too, so timing does not reveal who exists.
    return hash_password(uuid.uuid4().hex)


def _user(row: object) -> CurrentUser:
    fields = {f: getattr(row, f) for f in CurrentUser.__struct_fields__}
    return CurrentUser(**fields)


class AuthService:
    def __init__(
        self, session: AsyncSession, settings: PortalSettings, authenticator: Authenticator
    ) -> None:
        self.session = session
        self.settings = settings
        self.authenticator = authenticator

    async def login(
        self, username: str, password: str, address: str
    ) -> tuple[IssuedToken, CurrentUser]:
        """Refused with 429 while this address must wait before trying this user name again
        (portal.auth.throttle) — even with the right password, or guessing would simply
        continue. Other addresses, the owner's among them, are not affected."""
        key = username.lower()
        # Serialise attempts of one address on one user name across replicas, so N parallel
        # guesses cannot all read "N-1 failures so far".
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"login:{address}:{key}"},
        )
        failures = await recent_failures(self.session, self.settings, address, key)
        if (wait := wait_s(failures, self.settings)) is not None:
            await self.session.rollback()
            raise TooManyRequests(
                f"too many failed sign-ins from this address; wait {wait} s and try again",
                retry_after_s=wait,
            )
        row = (
            await self.session.execute(select(*users.c).where(func.lower(users.c.username) == key))
        ).one_or_none()
        stored_hash = row.password_hash if row is not None else _dummy_hash()
        if not await asyncio.to_thread(verify_password, password, stored_hash) or row is None:
            await self.session.execute(
                insert(login_failures).values(username=username, address=address)
            )
            # Housekeeping: rows older than the window limit nothing any more (anyone's).
            await self.session.execute(
                delete(login_failures).where(login_failures.c.at <= self._window())
            )
            await self.session.commit()
            raise NotAuthenticated(WRONG_CREDENTIALS)
        # Only this address's failures: a guesser elsewhere stays slowed down.
        await self.session.execute(
            delete(login_failures).where(
                func.lower(login_failures.c.username) == key, login_failures.c.address == address
            )
        )
        await self.session.commit()
        user = _user(row)
        issued = issue_token(
            self.settings.jwt_secret,
            user.id,
            user.role,
            self.settings.token_ttl_s,
            row.token_generation,
        )
        return issued, user

    async def logout(self, claims: TokenClaims) -> None:
        await self.session.execute(
            pg_insert(revoked_tokens)
            .values(jti=claims.jti, expires_at=claims.expires_at)
            .on_conflict_do_nothing()
        )
        # Housekeeping: a revoked token that has expired anyway needs no row.
        await self.session.execute(
            delete(revoked_tokens).where(revoked_tokens.c.expires_at < datetime.now(UTC))
        )
        await self.session.commit()
        self.authenticator.remember_revoked(claims.jti, claims.expires_at)

    def _window(self) -> Any:
        return func.now() - func.make_interval(0, 0, 0, 0, 0, 0, self.settings.login_window_s)

    async def register(self, data: RegisterRequest, address: str) -> None:
        """Create a client account if the user name is free — and answer the same either way.

        Registration is not an oracle for which user names exist: a taken name gets the same
        answer, after the same work (the password is hashed either way), and nothing changes.
        Whoever registered learns the outcome only by signing in, which spends a registration
        and a sign-in attempt of their address (both limited, portal.auth.throttle), and every
        free name probed that way becomes a real, audited account. Deployments that must not
        reveal even that turn self-registration off (PORTAL_ALLOW_REGISTRATION=false).
        """
        if not self.settings.allow_registration:
            raise Forbidden("self-registration is turned off; ask an administrator for an account")
        # Each registration spends one of the address's attempts, like a failed sign-in, and is
        # counted before the (deliberately slow) password hash: anonymous requests cannot make
        # the portal hash without limit.
        failures = await recent_failures(self.session, self.settings, address, REGISTRATION_ATTEMPT)
        # No back-off here: a registration is not a failure, only a cost (one hash) to bound.
        if (wait := wait_s(failures, self.settings, backoff=False)) is not None:
            await self.session.rollback()
            raise TooManyRequests(
                "too many sign-in attempts or registrations from this address; "
                f"wait {wait} s and try again",
                retry_after_s=wait,
            )
        await self.session.execute(
            insert(login_failures).values(username=REGISTRATION_ATTEMPT, address=address)
        )
        await self.session.commit()
        password_hash = await asyncio.to_thread(hash_password, data.password)
        statement = (
            pg_insert(users)
            .values(
                username=data.username,
                name=data.name,
                email=data.email or None,
                role="client",
                time_zone=data.time_zone,
                password_hash=password_hash,
            )
            .on_conflict_do_nothing()  # the name is taken: say nothing, change nothing
            .returning(*[users.c[f] for f in CurrentUser.__struct_fields__])
        )
        row = (await self.session.execute(statement)).one_or_none()
        if row is not None:
            user = _user(row)
            await record(self.session, user, "register", "user", user.id, after=user)
        await self.session.commit()
