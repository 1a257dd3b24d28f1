"""Field types and checks shared by the request schemas.

Constraints live in the types (so OpenAPI documents them). Checks that deserve a message of
their own — "a real IANA time zone", "no NUL characters" (PostgreSQL text cannot hold them),
"not blank", "an e-mail address" — run in ``__post_init__``, which msgspec turns into a 400 with
the field's name; the document states the same rule as a pattern or an enum (``documented``), so
a request that follows the schema is never refused by them.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any

import msgspec

from portal.auth.passwords import MIN_PASSWORD_LENGTH

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"
# Python's whitespace (str.isspace, str.strip), spelled out: ECMA, Rust and Python regexes
# disagree about what \s means, and the document must say exactly what the checks below do.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\x00]*$"
VISIBLE_TEXT_PATTERN = rf"^[{_SPACE}]*[^{_SPACE}\x00][^\x00]*$"  # some non-space, no NUL
EMAIL_PATTERN = rf"^([^{_SPACE}\x00]+@[^{_SPACE}\x00@]*\.[^{_SPACE}\x00@]*)?$"  # or empty
# Read once: a set lookup never touches the file system with user input (ZoneInfo("../x")
# would), and the document lists them.
TIME_ZONES = frozenset(zoneinfo.available_timezones()) | {"UTC"}


def documented(**schema: Any) -> dict[str, Any]:
    """``Meta(extra_json_schema=...)`` that adds ``schema`` (JSON Schema keys) to the OpenAPI
    document only: Litestar reads additions from the ``extra`` key, msgspec does not enforce
    them (the field's ``__post_init__`` check does, with a readable message)."""
    return {"extra": schema}


Username = Annotated[
    str,
    msgspec.Meta(
        pattern=USERNAME_PATTERN,
        description="3–64 characters: letters, digits and _ . @ -",
        examples=["alice"],
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=MIN_PASSWORD_LENGTH, max_length=256)]
Name = Annotated[
    str, msgspec.Meta(max_length=200, extra_json_schema=documented(pattern=NO_NUL_PATTERN))
]
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        examples=["alice@example.com"],
        extra_json_schema=documented(pattern=EMAIL_PATTERN),
    ),
]
TimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="IANA time zone, e.g. Europe/Paris",
        extra_json_schema=documented(enum=sorted(TIME_ZONES)),
    ),
]


def check_time_zone(value: str) -> None:
    if value not in TIME_ZONES:
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
