"""The ``devices`` table (schema: migrations/sql)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Integer, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from portal.db import DB_DEFAULT, metadata
from portal.users.tables import users

devices = Table(
    "devices",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=DB_DEFAULT),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("max_hourly_kwh", Float, nullable=False),
    Column("meter_kind", Text, nullable=False),
    Column("rated_power_w", Float),
    Column("interval_s", Integer, nullable=False),
    Column("owner_id", UUID(as_uuid=True), ForeignKey(users.c.id)),
    Column("credentials_rotated_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
)
