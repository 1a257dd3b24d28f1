"""The portal's database plumbing: the MetaData every domain's ``tables.py`` defines its tables
on (the schema itself is migrations/sql), the session factory and the request-scoped session
dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from sqlalchemy import FetchedValue, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

# One MetaData for every domain's tables (<domain>/tables.py), so foreign keys resolve.
metadata = MetaData()
DB_DEFAULT = FetchedValue()  # the database fills it in (defaults in migrations/sql)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """One session per request; whatever a service did not commit is rolled back."""
    factory: async_sessionmaker[AsyncSession] = state.db_sessions
    async with factory() as session:
        yield session
