"""Field types and checks shared by the request schemas.

Constraints live in the types (so OpenAPI documents them); what a JSON Schema cannot say well —
"a real IANA time zone", "no NUL characters" (PostgreSQL text cannot hold them) — is checked in
``__post_init__``, which msgspec turns into a 400 with the field's name.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Annotated

import msgspec

from portal.auth.passwords import MIN_PASSWORD_LENGTH

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"

Username = Annotated[
    str,
    msgspec.Meta(
        pattern=USERNAME_PATTERN,
        description="3–64 characters: letters, digits and _ . @ -",
        examples=["alice"],
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=MIN_PASSWORD_LENGTH, max_length=256)]
Name = Annotated[str, msgspec.Meta(max_length=200)]
Email = Annotated[str, msgspec.Meta(max_length=254, examples=["alice@example.com"])]
TimeZone = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, description="IANA time zone, e.g. Europe/Paris")
]


@functools.cache
def _time_zones() -> frozenset[str]:
    # Computed on first use, not at import; a set lookup never touches the file system with
    # user input (ZoneInfo("../x") would).
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def check_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValueError(f"time_zone: {value[:64]!r} is not an IANA time zone (e.g. Europe/Paris)")


def check_text(field: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise ValueError(f"{field} must not contain NUL characters")


def check_email(value: str | None) -> None:
    if value is None or value == "":
        return
    check_text("email", value)
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError(f"email: {value[:64]!r} is not an e-mail address")
