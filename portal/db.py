"""SQLAlchemy Core tables for what the portal touches (the schema itself is migrations/sql) and
the request-scoped session dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

metadata = MetaData()
_DB = FetchedValue()  # the database fills it in (defaults in migrations/sql)

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=_DB),
    Column("username", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("time_zone", Text, nullable=False),
    # Incremented by every password change: tokens of an earlier generation are refused.
    Column("token_generation", Integer, nullable=False, server_default=_DB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_DB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_DB),
)

devices = Table(
    "devices",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=_DB),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("max_hourly_kwh", Float, nullable=False),
    Column("meter_kind", Text, nullable=False),
    Column("rated_power_w", Float),
    Column("interval_s", Integer, nullable=False),
    Column("owner_id", UUID(as_uuid=True), ForeignKey("users.id")),
    Column("credentials_rotated_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_DB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_DB),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, server_default=_DB),
    Column("at", DateTime(timezone=True), nullable=False, server_default=_DB),
    Column("actor_id", UUID(as_uuid=True)),
    Column("actor_username", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity", Text, nullable=False),
    Column("entity_id", Text),
    Column("before", JSONB),
    Column("after", JSONB),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", Text, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger, primary_key=True, server_default=_DB),
    Column("username", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=_DB),
)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """One session per request; whatever a service did not commit is rolled back."""
    factory: async_sessionmaker[AsyncSession] = state.db_sessions
    async with factory() as session:
        yield session
