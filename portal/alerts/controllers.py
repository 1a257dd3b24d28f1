"""/api/v1/alerts: a client's own alerts, every alert for administrators."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from contract.enums import AlertStatus
from portal.alerts.providers import alert_dependencies
from portal.alerts.push import AlertPush
from portal.alerts.schemas import AlertOut, AlertPage, UnreadCount
from portal.alerts.services import AlertService
from portal.errors import Conflict

Alerts = NamedDependency[AlertService]
Push = NamedDependency[AlertPush]
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="alerts to skip")]
Unread = Annotated[bool | None, QueryParameter(description="true: open alerts only")]
StatusFilter = Annotated[AlertStatus | None, QueryParameter(description="open, acknowledged…")]
DeviceFilter = Annotated[uuid.UUID | None, QueryParameter(description="one device's alerts")]


class AlertController(Controller):
    path = "/api/v1/alerts"
    tags = ("alerts",)
    dependencies = alert_dependencies()

    @get("/", summary="Alerts, newest first: a client's own, all for administrators")
    async def list_alerts(
        self,
        alerts: Alerts,
        status: StatusFilter = None,
        unread: Unread = None,
        device_id: DeviceFilter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AlertPage:
        return await alerts.list_alerts(
            status=status, unread=unread, device_id=device_id, limit=limit, offset=offset
        )

    @get("/unread-count", summary="How many of the caller's alerts are open (the bell)")
    async def unread_count(self, alerts: Alerts) -> UnreadCount:
        return UnreadCount(unread=await alerts.unread())

    @get("/{alert_id:uuid}", summary="One alert (a client's own only)")
    async def get_alert(self, alerts: Alerts, alert_id: FromPath[uuid.UUID]) -> AlertOut:
        return await alerts.get(alert_id)

    @post(
        "/{alert_id:uuid}/ack",
        status_code=200,
        summary="Acknowledge an alert (409 if it was retracted)",
        opt={"errors": (Conflict,)},
    )
    async def acknowledge(
        self, alerts: Alerts, push: Push, alert_id: FromPath[uuid.UUID]
    ) -> AlertOut:
        alert, changed = await alerts.acknowledge(alert_id)
        if changed:  # idempotent: a repeated acknowledgement is no new event
            await push.acknowledged(alert)
        return alert
