"""The ``alerts`` table as the portal reads it (schema: migrations/sql/0001_schema.sql).

The hub writes every column except the acknowledgement, which is the portal's.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, Column, ColumnElement, DateTime, Float, Table, Text, and_, or_
from sqlalchemy.dialects.postgresql import UUID

from portal.db import metadata
from portal.devices.tables import devices

alerts = Table(
    "alerts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("device_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False),
    Column("hour", DateTime(timezone=True)),
    Column("limit_kwh", Float),
    Column("value_kwh", Float),
    Column("projected_kwh", Float),
    Column("final_kwh", Float),
    Column("late", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", UUID(as_uuid=True)),
)


def visible_to(user_id: uuid.UUID) -> ColumnElement[bool]:
    """A client's alerts: raised for them, or raised while the device they own now had no
    owner. An alert raised for a previous owner stays theirs: it was delivered to them and
    their acknowledgement (or not) is part of it. Needs ``devices`` joined."""
    return or_(
        alerts.c.user_id == user_id,
        and_(alerts.c.user_id.is_(None), devices.c.owner_id == user_id),
    )
