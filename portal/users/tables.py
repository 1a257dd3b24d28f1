"""The ``users`` table (schema: migrations/sql)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from portal.db import DB_DEFAULT, metadata

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=DB_DEFAULT),
    Column("username", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("time_zone", Text, nullable=False),
    # Incremented by every password change: tokens of an earlier generation are refused.
    Column("token_generation", Integer, nullable=False, server_default=DB_DEFAULT),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
)
