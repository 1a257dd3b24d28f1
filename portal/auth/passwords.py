"""argon2id password hashes through libpass (the maintained passlib)."""

from __future__ import annotations

import secrets

from passlib.context import CryptContext

# OWASP's argon2id baseline is m=19 MiB, t=2; passlib's default (64 MiB, t=3, p=4) is stronger
# and still ~50 ms here, which also paces online guessing.
_context = CryptContext(schemes=["argon2"], argon2__type="ID")

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return str(_context.hash(password))


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bool(_context.verify(password, password_hash))
    except (ValueError, TypeError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(password) > 256:
        return "password must be at most 256 characters long"
    return None


def generate_password(nbytes: int = 18) -> str:
    """A random URL-safe password that does not start with ``-``.

    token_urlsafe starts with ``-`` one time in 64; such a password given on a command line
    (``ems-sim run --password -x…``) is taken for an option, so it is drawn again.
    """
    while True:
        password = secrets.token_urlsafe(nbytes)
        if not password.startswith("-"):
            return password
