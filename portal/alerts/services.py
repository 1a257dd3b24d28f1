"""Alerts for the caller: a client's own (raised for them, or raised while nobody owned a
device they own now), all of them for administrators — enforced in the queries; anyone
else's alert is "not found".

"Unread" is an open alert: raised and neither acknowledged nor retracted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contract.enums import AlertStatus
from portal.alerts.schemas import AlertOut, AlertPage
from portal.alerts.tables import alerts, visible_to
from portal.alerts.texts import describe
from portal.auth.schemas import CurrentUser
from portal.devices.tables import devices
from portal.errors import Conflict, NotFound
from portal.users.tables import users


def _query(actor: CurrentUser) -> Select[Any]:
    query = (
        select(*alerts.c, devices.c.name.label("device_name"), users.c.username.label("owner"))
        .join(devices, devices.c.id == alerts.c.device_id)
        .outerjoin(users, users.c.id == devices.c.owner_id)
    )
    return query if actor.is_admin else query.where(visible_to(actor.id))


async def unread_count(db: AsyncSession | AsyncConnection, user: CurrentUser | uuid.UUID) -> int:
    """Open alerts of a client (by id or principal); an administrator's are the fleet's."""
    query = select(func.count()).select_from(
        alerts.join(devices, devices.c.id == alerts.c.device_id)
    )
    query = query.where(alerts.c.status == "open")
    if isinstance(user, uuid.UUID) or not user.is_admin:
        query = query.where(visible_to(user if isinstance(user, uuid.UUID) else user.id))
    return int((await db.execute(query)).scalar_one())


def to_out(row: Any, time_zone: str, now: datetime) -> AlertOut:
    alert = AlertOut(**row._asdict())
    alert.text = describe(alert, alert.device_name, time_zone, now)
    return alert


class AlertService:
    def __init__(self, session: AsyncSession, actor: CurrentUser) -> None:
        self.session = session
        self.actor = actor

    async def list_alerts(
        self,
        *,
        status: AlertStatus | None = None,
        unread: bool | None = None,
        device_id: uuid.UUID | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> AlertPage:
        query = _query(self.actor)
        if status is not None:
            query = query.where(alerts.c.status == status)
        if unread is not None:
            query = query.where((alerts.c.status == "open") == unread)
        if device_id is not None:
            query = query.where(alerts.c.device_id == device_id)
        total = (
            await self.session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        page = query.order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
        rows = await self.session.execute(page.limit(limit).offset(offset))
        now = datetime.now(UTC)
        return AlertPage(
            items=[to_out(row, self.actor.time_zone, now) for row in rows],
            total=int(total),
            unread=await self.unread(),
            limit=limit,
            offset=offset,
        )

    async def unread(self) -> int:
        return await unread_count(self.session, self.actor)

    async def get(self, alert_id: uuid.UUID, *, lock: bool = False) -> AlertOut:
        query = _query(self.actor).where(alerts.c.id == alert_id)
        if lock:
            query = query.with_for_update(of=alerts)
        row = (await self.session.execute(query)).one_or_none()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        return to_out(row, self.actor.time_zone, datetime.now(UTC))

    async def acknowledge(self, alert_id: uuid.UUID) -> tuple[AlertOut, bool]:
        """Records who and when, and says whether this call did it. Acknowledging twice keeps
        the first acknowledgement and changes nothing, so the caller publishes no second
        event; the row lock makes concurrent acknowledgements agree on which one was first."""
        alert = await self.get(alert_id, lock=True)
        if alert.status == "retracted":
            await self.session.rollback()
            raise Conflict(
                f"alert {alert_id} was retracted (late readings brought the hour back under "
                "the limit); there is nothing to acknowledge"
            )
        changed = alert.status == "open"
        if changed:
            await self.session.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(
                    status="acknowledged",
                    acknowledged_at=func.now(),
                    acknowledged_by=self.actor.id,
                )
            )
            alert = await self.get(alert_id)
        await self.session.commit()
        return alert, changed
