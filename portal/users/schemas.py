"""User shapes: what administrators send and what the API returns (never a password hash)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from contract.enums import Role
from portal.validation import (
    Email,
    Name,
    Password,
    TimeZone,
    Username,
    check_email,
    check_text,
    check_time_zone,
)


class UserOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    username: str
    name: str
    email: str | None
    role: Role
    time_zone: str
    created_at: datetime
    updated_at: datetime


class UserCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: Username
    password: Password
    role: Role = "client"
    name: Name = ""
    email: Email | None = None
    time_zone: TimeZone = "UTC"

    def __post_init__(self) -> None:
        check_text("name", self.name)
        check_email(self.email)
        check_time_zone(self.time_zone)


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields present change; ``password`` resets the user's password."""

    username: Username | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    password: Password | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.name, str):
            check_text("name", self.name)
        if not isinstance(self.email, msgspec.UnsetType):
            check_email(self.email)
        if isinstance(self.time_zone, str):
            check_time_zone(self.time_zone)

    def changes(self) -> dict[str, object]:
        """The fields that were sent (``password`` excluded: it is hashed by the service)."""
        return {
            field: value
            for field in ("username", "name", "email", "role", "time_zone")
            if (value := getattr(self, field)) is not msgspec.UNSET
        }
