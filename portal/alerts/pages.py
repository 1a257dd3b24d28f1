"""Alert pages: a client's alert history (/alerts), the fleet's open alerts (/admin/alerts).

Acknowledging is a small form per alert (POST /alerts/{id}/ack with the CSRF field) that
returns to the page it came from; the toast and the bell are static/alerts.js.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from portal.alerts.providers import alert_dependencies
from portal.alerts.push import AlertPush
from portal.alerts.services import AlertService
from portal.alerts.texts import KIND_LABELS, local_clock
from portal.auth.guards import current_user, requires_admin
from portal.errors import Conflict
from portal.pagekit import PAGE, form_data, render, safe_next, see_other

Alerts = NamedDependency[AlertService]
Push = NamedDependency[AlertPush]
PAGE_SIZE = 50
_FILTERS: dict[str, dict[str, Any]] = {
    "unread": {"unread": True},
    "acknowledged": {"status": "acknowledged"},
    "all": {},
}


def _view(request: Request[Any, Any, Any], template: str, **context: Any) -> Template:
    user = current_user(request)
    when = local_clock(user.time_zone if user else "UTC")
    return render(request, template, when=when, kinds=KIND_LABELS, **context)


def _offset(request: Request[Any, Any, Any]) -> int:
    raw = request.query_params.get("offset", "0")
    return max(0, int(raw)) if raw.isdigit() else 0


class AlertPages(Controller):
    opt = PAGE
    include_in_schema = False
    dependencies = alert_dependencies()

    @get("/alerts")
    async def history(self, request: Request[Any, Any, Any], alerts: Alerts) -> Template:
        show = request.query_params.get("show", "all")
        show = show if show in _FILTERS else "all"
        offset = _offset(request)
        page = await alerts.list_alerts(**_FILTERS[show], limit=PAGE_SIZE, offset=offset)
        return _view(request, "alerts/history.html", page=page, show=show, offset=offset)

    @get("/admin/alerts", guards=[requires_admin])
    async def fleet(self, request: Request[Any, Any, Any], alerts: Alerts) -> Template:
        offset = _offset(request)
        page = await alerts.list_alerts(unread=True, limit=PAGE_SIZE, offset=offset)
        return _view(request, "alerts/fleet.html", page=page, offset=offset)

    @post("/alerts/{alert_id:uuid}/ack", status_code=303)
    async def acknowledge(
        self,
        request: Request[Any, Any, Any],
        alerts: Alerts,
        push: Push,
        alert_id: FromPath[uuid.UUID],
    ) -> Redirect:
        form = await form_data(request)
        user = current_user(request)
        back = safe_next(form.get("next"), user) if user else "/alerts"
        try:
            alert, changed = await alerts.acknowledge(alert_id)
        except Conflict:
            return see_other(_with(back, "done=alert-retracted"))
        if changed:  # a second click (another tab) is no new event
            await push.acknowledged(alert)
        return see_other(_with(back, "done=alert-acknowledged"))


def _with(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"
