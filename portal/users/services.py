"""User administration. Every change is audited in the same transaction; device owners that a
change affects are reported back so the caller can publish the device events after commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.services import record
from portal.auth.passwords import hash_password
from portal.auth.schemas import CurrentUser
from portal.devices.schemas import DeviceOut
from portal.devices.services import DeviceEvents, device_query
from portal.devices.tables import devices
from portal.errors import Conflict, Forbidden, NotFound
from portal.users.schemas import UserCreate, UserOut, UserUpdate
from portal.users.tables import users

log = logging.getLogger("portal.users")

USER_COLUMNS = [c for c in users.c if c.name not in ("password_hash", "token_generation")]


def _email(value: str | None) -> str | None:
    return value or None


class UserService:
    def __init__(self, session: AsyncSession, actor: CurrentUser, events: DeviceEvents) -> None:
        self.session = session
        self.actor = actor
        self.events = events

    async def list_users(self) -> list[UserOut]:
        rows = await self.session.execute(select(*USER_COLUMNS).order_by(users.c.username))
        return [UserOut(**row._asdict()) for row in rows]

    async def get(self, user_id: uuid.UUID) -> UserOut:
        row = (
            await self.session.execute(select(*USER_COLUMNS).where(users.c.id == user_id))
        ).one_or_none()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return UserOut(**row._asdict())

    async def create(self, data: UserCreate) -> UserOut:
        values = msgspec.structs.asdict(data)
        password_hash = await asyncio.to_thread(hash_password, values.pop("password"))
        values["email"] = _email(values["email"])
        created = await self._write(
            insert(users).values(**values, password_hash=password_hash).returning(*USER_COLUMNS),
            data.username,
        )
        await record(self.session, self.actor, "create", "user", created.id, after=created)
        await self.session.commit()
        return created

    async def update(self, user_id: uuid.UUID, data: UserUpdate) -> UserOut:
        before = await self.get(user_id)
        changes: dict[str, Any] = data.changes()
        if "email" in changes:
            changes["email"] = _email(changes["email"])
        if changes.get("role") == "client" and before.role == "admin" and user_id == self.actor.id:
            raise Forbidden("you cannot remove your own administrator role")
        if changes.get("role") == "admin" and before.role == "client":
            owned = await self._owned_devices(user_id)
            if owned:
                raise Conflict(
                    f"user {before.username} owns {len(owned)} device(s); only clients own "
                    "devices — unassign them first"
                )
        if isinstance(data.password, str):
            changes["password_hash"] = await asyncio.to_thread(hash_password, data.password)
            # Every token issued before this change stops working (portal.auth.authenticator).
            changes["token_generation"] = users.c.token_generation + 1
        statement = (
            update(users)
            .where(users.c.id == user_id)
            .values(**changes, updated_at=func.now())
            .returning(*USER_COLUMNS)
        )
        after = await self._write(statement, changes.get("username", before.username))
        audit_after: dict[str, Any] = msgspec.to_builtins(after)
        if "password_hash" in changes:
            audit_after["password_reset"] = True  # that it happened; never the password
        await record(
            self.session, self.actor, "update", "user", user_id, before=before, after=audit_after
        )
        await self.session.commit()
        return after

    async def delete(self, user_id: uuid.UUID) -> None:
        """Delete the user; their devices and data stay, unassigned (hubs are told)."""
        if user_id == self.actor.id:
            raise Forbidden("you cannot delete your own account")
        before = await self.get(user_id)
        owned = await self._owned_devices(user_id)
        await self.session.execute(delete(users).where(users.c.id == user_id))
        audit_before = {**msgspec.to_builtins(before), "devices": [str(d.id) for d in owned]}
        await record(self.session, self.actor, "delete", "user", user_id, before=audit_before)
        await self.session.commit()
        for device in owned:
            unassigned = msgspec.structs.replace(device, owner_id=None, owner_username=None)
            try:
                await self.events.publish_device_event(unassigned.event("owner_changed"))
            except Exception:  # best effort after commit
                log.exception("device event owner_changed %s failed", device.id)

    async def _owned_devices(self, user_id: uuid.UUID) -> list[DeviceOut]:
        query = device_query().where(devices.c.owner_id == user_id).with_for_update(of=devices)
        return [DeviceOut(**row._asdict()) for row in await self.session.execute(query)]

    async def _write(self, statement: Any, username: str) -> UserOut:
        try:
            row = (await self.session.execute(statement)).one_or_none()
        except IntegrityError:
            await self.session.rollback()
            raise Conflict(f"the username {username!r} is already taken") from None
        if row is None:  # deleted by someone else since we read it
            raise NotFound("the user no longer exists")
        return UserOut(**row._asdict())
