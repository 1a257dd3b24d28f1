"""The ``audit_log`` table (schema: migrations/sql)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from portal.db import DB_DEFAULT, metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, server_default=DB_DEFAULT),
    Column("at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
    Column("actor_id", UUID(as_uuid=True)),
    Column("actor_username", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity", Text, nullable=False),
    Column("entity_id", Text),
    Column("before", JSONB),
    Column("after", JSONB),
)
