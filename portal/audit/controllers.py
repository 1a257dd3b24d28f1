"""GET /api/v1/audit (administrators)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from portal.audit.providers import audit_dependencies
from portal.audit.schemas import AuditPage
from portal.audit.services import AuditService
from portal.auth.guards import requires_admin

PageNumber = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="1-based page number")]
PageSize = Annotated[int, QueryParameter(ge=1, le=500, description="entries per page")]


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ("audit",)
    guards = (requires_admin,)
    dependencies = audit_dependencies()

    @get("/", summary="Audit log of administrative changes, newest first")
    async def list_entries(
        self,
        audit: NamedDependency[AuditService],
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> AuditPage:
        return await audit.page(page, page_size)
