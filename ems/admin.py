"""The first administrator (and any later one): created non-interactively for scripts."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from portal.auth.passwords import generate_password, hash_password, password_problem


@dataclass(frozen=True, slots=True)
class AdminResult:
    username: str
    created: bool
    password: str | None  # only when we generated it (printed once, never stored)


def ensure_admin(
    dsn: str, username: str, password: str | None, *, reset: bool = False
) -> AdminResult:
    """Create ``username`` as an administrator unless it exists; ``reset`` sets a new password."""
    if password is not None and (problem := password_problem(password)):
        raise ValueError(problem)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT id, role FROM users WHERE lower(username) = lower(%s)", (username,)
        ).fetchone()
        if row is not None and not reset:
            return AdminResult(username, created=False, password=None)
        generated = password is None
        secret = generate_password(12) if password is None else password
        if row is None:
            conn.execute(
                "INSERT INTO users (username, name, role, password_hash)"
                " VALUES (%s, %s, 'admin', %s)",
                (username, "Administrator", hash_password(secret)),
            )
            conn.execute(
                "INSERT INTO audit_log (actor_username, action, entity, entity_id, after)"
                " VALUES ('ems-cli', 'create', 'user', %s, jsonb_build_object('role', 'admin'))",
                (username,),
            )
        else:
            conn.execute(
                # A new generation: every session signed in with the old password ends.
                "UPDATE users SET password_hash = %s, role = 'admin', updated_at = now(),"
                " token_generation = token_generation + 1 WHERE id = %s",
                (hash_password(secret), row[0]),
            )
            conn.execute(
                "INSERT INTO audit_log (actor_username, action, entity, entity_id)"
                " VALUES ('ems-cli', 'reset_password', 'user', %s)",
                (username,),
            )
        return AdminResult(username, created=row is None, password=secret if generated else None)


def any_admin(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return (
            conn.execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").fetchone() is not None
        )
