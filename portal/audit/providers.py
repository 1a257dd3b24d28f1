"""Dependencies of the audit controller and page (registered on them, not app-wide)."""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.services import AuditService


async def provide_audit_service(db_session: NamedDependency[AsyncSession]) -> AuditService:
    return AuditService(db_session)


def audit_dependencies() -> dict[str, Provide]:
    return {"audit": Provide(provide_audit_service)}
