"""The chat tables (schema: migrations/sql/0001_schema.sql).

``messages.read_at`` is when the other side read the message: the client, or any one of the
administrators (they are one side). A message may refer to one of the client's alerts.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from portal.db import DB_DEFAULT, metadata

conversations = Table(
    "conversations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=DB_DEFAULT),
    Column("client_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
    Column("last_message_at", DateTime(timezone=True)),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, server_default=DB_DEFAULT),
    Column("conversation_id", UUID(as_uuid=True), nullable=False),
    Column("sender_id", UUID(as_uuid=True)),
    Column("sender_role", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("alert_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=DB_DEFAULT),
    Column("read_at", DateTime(timezone=True)),
)
