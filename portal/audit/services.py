"""Writing and reading the audit log.

``record`` runs inside the caller's transaction, so an administrative change and its audit
entry commit together or not at all. Secrets never reach it: ``snapshot`` drops every secret
field (passwords, hashes, tokens), whatever the caller passed.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.schemas import AuditEntry, AuditPage
from portal.audit.tables import audit_log
from portal.auth.schemas import CurrentUser

_SECRET_KEYS = frozenset(
    {"password", "password_hash", "mqtt_password", "access_token", "token", "csrf_token", "secret"}
)


def snapshot(value: Any) -> dict[str, Any] | None:
    """A JSON-safe copy of a struct or mapping, without anything secret."""
    if value is None:
        return None
    builtins = msgspec.to_builtins(value)
    if not isinstance(builtins, dict):
        raise TypeError(f"cannot snapshot {type(value).__name__}")
    return {key: item for key, item in builtins.items() if key.lower() not in _SECRET_KEYS}


async def record(
    session: AsyncSession,
    actor: CurrentUser,
    action: str,
    entity: str,
    entity_id: object,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    await session.execute(
        insert(audit_log).values(
            actor_id=actor.id,
            actor_username=actor.username,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=snapshot(before),
            after=snapshot(after),
        )
    )


class AuditService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, page: int, page_size: int) -> AuditPage:
        total = (await self.session.execute(select(func.count()).select_from(audit_log))).scalar()
        rows = await self.session.execute(
            select(audit_log)
            .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        items = [AuditEntry(**row._asdict()) for row in rows]
        return AuditPage(items=items, page=page, page_size=page_size, total=int(total or 0))
