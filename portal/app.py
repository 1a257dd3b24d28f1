"""create_app(settings): the Litestar application. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, MediaType, get
from litestar.openapi import OpenAPIConfig
from litestar.response import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from portal.settings import PortalSettings


def create_app(settings: PortalSettings) -> Litestar:
    registry = CollectorRegistry()
    requests_total = Counter("portal_requests", "HTTP requests served", registry=registry)
    engine: AsyncEngine = create_async_engine(
        settings.async_database_url, pool_size=settings.db_pool_size, pool_pre_ping=True
    )

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    @get("/health", media_type=MediaType.JSON, include_in_schema=False)
    async def health() -> Response[dict[str, str]]:
        requests_total.inc()
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return Response({"status": "degraded", "database": type(exc).__name__}, status_code=503)
        return Response({"status": "ok", "database": "ok", "instance": settings.instance_id})

    @get("/metrics", include_in_schema=False)
    async def metrics() -> Response[bytes]:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Litestar(
        route_handlers=[health, metrics],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="EMS portal", version="1.0.0", path="/schema"),
    )
