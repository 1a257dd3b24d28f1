"""Signed access tokens (JWT, HS256) and the CSRF token bound to each of them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
SESSION_COOKIE = "ems_session"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_REQUIRED_CLAIMS = ["sub", "role", "jti", "exp", "iat"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    role: str
    jti: str
    expires_at: datetime
    issued_at: datetime
    generation: int = 0  # the user's token_generation when issued (migrations/sql/0009)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


def issue_token(
    secret: str, user_id: uuid.UUID, role: str, ttl_s: int, generation: int = 0
) -> IssuedToken:
    now = datetime.now(UTC).replace(microsecond=0)
    expires_at = now + timedelta(seconds=ttl_s)
    claims = TokenClaims(user_id, role, uuid.uuid4().hex, expires_at, now, generation)
    payload = {
        "sub": str(user_id),
        "role": role,
        "jti": claims.jti,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "gen": generation,
    }
    return IssuedToken(jwt.encode(payload, secret, algorithm=ALGORITHM), claims)


def decode_token(secret: str, token: str) -> TokenClaims | None:
    """The token's claims if its signature, algorithm, expiry and claims are all valid."""
    if not token or len(token) > 4096:
        return None
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": _REQUIRED_CLAIMS}
        )
        user_id = uuid.UUID(str(payload["sub"]))
        role, jti, generation = payload["role"], payload["jti"], payload.get("gen", 0)
        if not isinstance(role, str) or not isinstance(jti, str) or not 0 < len(jti) <= 64:
            return None
        if not isinstance(generation, int) or isinstance(generation, bool):
            return None
        return TokenClaims(
            user_id,
            role,
            jti,
            datetime.fromtimestamp(int(payload["exp"]), UTC),
            datetime.fromtimestamp(int(payload["iat"]), UTC),
            generation,
        )
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
        return None


def csrf_token_for(secret: str, jti: str) -> str:
    """The CSRF token of one session: derived from it, so any replica can check it."""
    return hmac.new(secret.encode(), b"csrf:" + jti.encode(), hashlib.sha256).hexdigest()


def anonymous_csrf_token() -> str:
    """For the login and registration forms, before there is a session."""
    return secrets.token_hex(32)


def tokens_match(presented: str | None, expected: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
