"""create_app(settings): the Litestar application. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from litestar import Litestar, MediaType, Router, get
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Response
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ASGIApp
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from portal.alerts.controllers import AlertController
from portal.alerts.pages import AlertPages
from portal.alerts.push import AlertPush
from portal.alerts.texts import BROWSER_LABELS
from portal.audit.controllers import AuditController
from portal.audit.pages import AuditPages
from portal.auth.authenticator import Authenticator
from portal.auth.controllers import AuthController, MeController
from portal.auth.guards import csrf_protect, requires_login
from portal.auth.middleware import AuthenticationMiddleware
from portal.auth.pages import AuthPages
from portal.broker_link import BrokerLink
from portal.chat.controllers import ChatController
from portal.chat.pages import ChatPages
from portal.chat.relay import ChatRelay
from portal.dashboards.controllers import ConsumptionController
from portal.dashboards.pages import DashboardPages, FleetPages
from portal.db import session_factory
from portal.deps import dependencies
from portal.devices.controllers import DeviceController
from portal.devices.pages import AdminDevicePages, ClientPages
from portal.errors import exception_handlers
from portal.metrics import RequestMetrics
from portal.openapi import BEARER, ClosedStructs, ErrorResponses, answer_options
from portal.realtime import Realtime
from portal.realtime.feeds import install_device_feeds
from portal.realtime.socket import realtime_socket
from portal.security_headers import add_security_headers
from portal.settings import PortalSettings
from portal.tasks import cancel_and_wait
from portal.users.controllers import UserController
from portal.users.pages import AdminUserPages

HERE = Path(__file__).resolve().parent
log = logging.getLogger("portal")


def _template_globals(engine: JinjaTemplateEngine) -> None:
    # Every page may need them (base.html renders the browser's labels): globals, not context.
    engine.engine.globals["labels"] = BROWSER_LABELS


def proxy_middleware(settings: PortalSettings) -> list[DefineMiddleware]:
    """The client's address and scheme as the trusted reverse proxy saw them.

    uvicorn's own middleware, installed here rather than by the server so that the trust list
    is this application's setting (``PORTAL_TRUSTED_PROXIES``), whatever serves it; and nobody
    at all is trusted unless configured (uvicorn would trust 127.0.0.1 by default). The
    sign-in limits key on that address (portal.auth.throttle) and the session cookie is
    ``Secure`` when the scheme is https (portal.auth.cookies).
    """
    if not settings.trusted_proxies:
        return []
    return [DefineMiddleware(_forwarded, trusted=list(settings.trusted_proxies))]


def _forwarded(app: ASGIApp, trusted: list[str]) -> ASGIApp:
    # uvicorn types the ASGI callables its own way; the protocol is the same.
    return cast("ASGIApp", ProxyHeadersMiddleware(cast("Any", app), trusted_hosts=trusted))


def create_app(settings: PortalSettings) -> Litestar:
    registry = CollectorRegistry()
    request_metrics = RequestMetrics(registry)
    engine: AsyncEngine = create_async_engine(
        settings.async_database_url, pool_size=settings.db_pool_size, pool_pre_ping=True
    )
    authenticator = Authenticator(engine, settings.jwt_secret, ttl_s=settings.auth_cache_ttl_s)
    broker = BrokerLink(settings)
    realtime = Realtime(settings, engine)
    install_device_feeds(realtime)
    chat = ChatRelay(realtime, engine)
    alert_push = AlertPush(realtime, engine)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        # The broker connection is supervised in the background: the portal serves pages and
        # reads while the broker is away; only credential changes need it (503 meanwhile).
        supervisor = asyncio.create_task(broker.run(), name="broker-link")
        events = asyncio.create_task(realtime.run(), name="realtime")
        try:
            yield
        finally:
            await cancel_and_wait(events, supervisor)
            await engine.dispose()

    @get("/health", media_type=MediaType.JSON, include_in_schema=False, opt={"public": True})
    async def health() -> Response[dict[str, str]]:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return Response({"status": "degraded", "database": type(exc).__name__}, status_code=503)
        return Response(
            {
                "status": "ok",
                "database": "ok",
                "instance": settings.instance_id,
                "events": "subscribed" if realtime.subscribed else "connecting",
            }
        )

    @get("/metrics", include_in_schema=False, opt={"public": True})
    async def metrics() -> Response[bytes]:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], opt={"public": True}
    )
    # The charting library, installed from the npm lockfile by scripts/bootstrap.sh (npm ci);
    # if it is missing the dashboards show their tables without charts.
    chart_library = create_static_files_router(
        path="/static/vendor/uplot",
        directories=[HERE / "frontend" / "node_modules" / "uplot" / "dist"],
        opt={"public": True},
        include_in_schema=False,
    )
    return Litestar(
        route_handlers=[
            health,
            metrics,
            static,
            chart_library,
            realtime_socket,
            AuthController,
            MeController,
            UserController,
            DeviceController,
            AuditController,
            ConsumptionController,
            AlertController,
            ChatController,
            AlertPages,
            AuthPages,
            ClientPages,
            AdminUserPages,
            AdminDevicePages,
            AuditPages,
            DashboardPages,
            FleetPages,
            ChatPages,
        ],
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "db_sessions": session_factory(engine),
                "authenticator": authenticator,
                "broker": broker,
                "realtime": realtime,
                "chat": chat,
                "alert_push": alert_push,
            }
        ),
        dependencies=dependencies(),
        middleware=[*proxy_middleware(settings), AuthenticationMiddleware(authenticator)],
        before_send=[add_security_headers, request_metrics.count],
        guards=[requires_login, csrf_protect],
        exception_handlers=exception_handlers(),
        plugins=[ErrorResponses(), ClosedStructs()],
        before_request=answer_options,
        template_config=TemplateConfig(
            directory=HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=_template_globals,
        ),
        request_max_body_size=1_048_576,
        openapi_config=OpenAPIConfig(
            title="EMS portal",
            version="1.0.0",
            path="/schema",
            # The JSON document only: the bundled UIs load their scripts from CDNs.
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
            openapi_router=Router(
                path="/schema", route_handlers=[], opt={"public": True}, include_in_schema=False
            ),
            components=Components(
                # Which operations need it: portal/openapi.py (all but the public ones).
                security_schemes={
                    BEARER: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="POST /api/v1/auth/login returns the token",
                    )
                }
            ),
        ),
    )
