"""/api/v1/devices/{id}/consumption/…, /readings and /export.csv: a device's data for the
signed-in user's local days (clients: their own devices; another client's is a 404)."""

from __future__ import annotations

import uuid
from types import MappingProxyType
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIFormat, Schema
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from portal.dashboards.export import CsvExport
from portal.dashboards.providers import dashboard_dependencies
from portal.dashboards.schemas import DailyRange, HourlyDay, ReadingsPage
from portal.dashboards.services import MAX_READINGS_PAGE, ConsumptionService
from portal.dashboards.timeframe import MAX_HOURLY_EXPORT_DAYS, MAX_READINGS_DAYS, instant_range
from portal.errors import Unprocessable

# Parsed by portal/dashboards/timeframe.py (its messages are clearer than a type's); the
# document states the formats it takes.
_WHEN = "a date (YYYY-MM-DD, the whole local day) or a timestamp with an offset"
_DATE = {"format": OpenAPIFormat.DATE}
_DATE_OR_TIMESTAMP = {
    "any_of": [Schema(format=OpenAPIFormat.DATE), Schema(format=OpenAPIFormat.DATE_TIME)]
}
Day = Annotated[
    str | None,
    QueryParameter(
        max_length=40, schema_extra=_DATE, description="local day, YYYY-MM-DD (default: today)"
    ),
]
FromDay = Annotated[
    str | None,
    QueryParameter(
        name="from",
        max_length=40,
        schema_extra=_DATE,
        description="first local day (default: to − 6)",
    ),
]
ToDay = Annotated[
    str | None,
    QueryParameter(
        max_length=40, schema_extra=_DATE, description="last local day, included (default: today)"
    ),
]
From = Annotated[
    str | None,
    QueryParameter(
        name="from",
        max_length=40,
        schema_extra=_DATE_OR_TIMESTAMP,
        description=f"start: {_WHEN}",
    ),
]
To = Annotated[
    str | None,
    QueryParameter(
        max_length=40,
        schema_extra=_DATE_OR_TIMESTAMP,
        description=f"end (a date is included): {_WHEN}",
    ),
]
After = Annotated[
    str | None,
    QueryParameter(
        max_length=40,
        schema_extra=_DATE_OR_TIMESTAMP,
        description="next page: the previous page's next_after",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_READINGS_PAGE, description="rows per page")]
Kind = Annotated[
    Literal["hourly", "readings"],
    QueryParameter(description="hourly energy (every hour, with quality) or raw readings"),
]
Consumption = NamedDependency[ConsumptionService]


class ConsumptionController(Controller):
    path = "/api/v1/devices"
    tags = ("consumption",)
    dependencies = dashboard_dependencies()
    # Any of them can answer 422: a range too long, from after to, outside the calendar.
    opt = MappingProxyType({"errors": (Unprocessable,)})

    @get(
        "/{device_id:uuid}/consumption/hourly",
        summary="Hourly energy of one local day: 23, 24 or 25 values with their quality",
    )
    async def hourly(
        self, consumption: Consumption, device_id: FromPath[uuid.UUID], date: Day = None
    ) -> HourlyDay:
        return await consumption.hourly(device_id, date)

    @get(
        "/{device_id:uuid}/consumption/daily",
        summary="Daily totals per local calendar day (at most 1,098 days), with the peaks",
    )
    async def daily(
        self,
        consumption: Consumption,
        device_id: FromPath[uuid.UUID],
        from_: FromDay = None,
        to: ToDay = None,
    ) -> DailyRange:
        return await consumption.daily(device_id, from_, to)

    @get(
        "/{device_id:uuid}/readings",
        summary="Raw readings, oldest first, paged (at most 10,000 a page, 366 days a range)",
    )
    async def readings(
        self,
        consumption: Consumption,
        device_id: FromPath[uuid.UUID],
        from_: From = None,
        to: To = None,
        after: After = None,
        limit: Limit = 1000,
    ) -> ReadingsPage:
        return await consumption.readings(device_id, from_, to, after, limit)

    @get(
        "/{device_id:uuid}/export.csv",
        summary="CSV of hourly energy (default) or raw readings, streamed",
        media_type="text/csv; charset=utf-8",
    )
    async def export_csv(
        self,
        request: Request[Any, Any, Any],
        consumption: Consumption,
        device_id: FromPath[uuid.UUID],
        from_: From = None,
        to: To = None,
        kind: Kind = "hourly",
    ) -> Stream:
        await consumption.device(device_id)  # 404 before any byte is sent
        longest = MAX_HOURLY_EXPORT_DAYS if kind == "hourly" else MAX_READINGS_DAYS
        span = instant_range(from_, to, consumption.tz, max_days=longest)
        export = CsvExport(request.app.state.db_sessions, device_id, kind, span, consumption.tz)
        return Stream(
            export.rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{export.filename()}"'},
        )
