"""The audit log page (administrators)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from portal.audit.controllers import PageNumber
from portal.audit.providers import audit_dependencies
from portal.audit.services import AuditService
from portal.auth.guards import requires_admin
from portal.pagekit import PAGE, render

PAGE_SIZE = 50


class AuditPages(Controller):
    path = "/admin/audit"
    guards = (requires_admin,)
    opt = PAGE
    include_in_schema = False
    dependencies = audit_dependencies()

    @get("/")
    async def audit_page(
        self,
        request: Request[Any, Any, Any],
        audit: NamedDependency[AuditService],
        page: PageNumber = 1,
    ) -> Template:
        return render(request, "admin/audit.html", log=await audit.page(page, PAGE_SIZE))
