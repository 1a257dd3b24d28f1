"""Dashboard pages: the client's live overview, one device's day and range views, and the
administrators' fleet view.

The pages carry the device's live state; the charts and tables are drawn in the browser
(/static/dashboards.js) from the same JSON API a script would use, so what the page shows is
what the API says. Live events come over the portal's WebSocket (/static/realtime.js).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal.auth.guards import requires_admin
from portal.auth.schemas import CurrentUser
from portal.dashboards.overview import OverviewService
from portal.dashboards.providers import dashboard_dependencies
from portal.dashboards.timeframe import local_today, parse_date
from portal.pagekit import PAGE, render, see_other

Overview = NamedDependency[OverviewService]
Me = NamedDependency[CurrentUser]
RANGES: dict[str, int] = {"week": 7, "month": 31, "year": 366}


class DashboardPages(Controller):
    path = "/dashboard"
    opt = PAGE
    include_in_schema = False
    dependencies = dashboard_dependencies()

    @get("/")
    async def overview(
        self, request: Request[Any, Any, Any], overview: Overview, current_user: Me
    ) -> Template | Redirect:
        if current_user.is_admin:
            return see_other("/admin/fleet")
        return render(
            request,
            "dashboards/overview.html",
            devices=await overview.my_devices(),
            time_zone=overview.tz.key,
        )

    @get("/devices/{device_id:uuid}")
    async def device(
        self,
        request: Request[Any, Any, Any],
        overview: Overview,
        device_id: FromPath[uuid.UUID],
        date: Annotated[str | None, QueryParameter()] = None,
        period: Annotated[str | None, QueryParameter(name="range")] = None,
    ) -> Template:
        live = await overview.device(device_id)
        day = parse_date("date", date) if date else local_today(overview.tz)
        return render(
            request,
            "dashboards/device.html",
            device=live,
            day=day.isoformat(),
            range=period if period in RANGES else "week",
            ranges=RANGES,
            time_zone=overview.tz.key,
        )


class FleetPages(Controller):
    path = "/admin/fleet"
    guards = (requires_admin,)
    opt = PAGE
    include_in_schema = False
    dependencies = dashboard_dependencies()

    @get("/")
    async def fleet(self, request: Request[Any, Any, Any], overview: Overview) -> Template:
        return render(request, "dashboards/fleet.html", fleet=await overview.fleet())
