"""The sign-in tables (schema: migrations/sql): revoked tokens and failed sign-ins."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Table, Text

from portal.db import DB_DEFAULT, metadata

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", Text, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger, primary_key=True, server_default=DB_DEFAULT),
    Column("username", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
)
