"""Request and response shapes of the authentication endpoints, and the signed-in principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contract.enums import Role
from portal.auth.tokens import TokenClaims
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


class CurrentUser(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in user, as GET /api/v1/me shows them."""

    id: uuid.UUID
    username: str
    name: str
    email: str | None
    role: Role
    time_zone: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """How the request was authenticated; cookie-authenticated writes need the CSRF token."""

    claims: TokenClaims
    via: Literal["cookie", "bearer"]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class LoginResponse(msgspec.Struct, kw_only=True):
    """``access_token`` goes in ``Authorization: Bearer …``; ``token`` is the same value."""

    access_token: str
    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_at: datetime
    csrf_token: str
    user: CurrentUser


class RegistrationReceived(msgspec.Struct, kw_only=True):
    """The same answer whether or not the user name was free (portal.auth.services.register)."""

    detail: str


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: Username
    password: Password
    name: Name = ""
    email: Email | None = None
    time_zone: TimeZone = "UTC"

    def __post_init__(self) -> None:
        check_text("name", self.name)
        check_email(self.email)
        check_time_zone(self.time_zone)
