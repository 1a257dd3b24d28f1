"""What /schema states agrees with what the portal checks and answers (no server needed).

The fuzz test (tests/integration/test_openapi_fuzz.py) samples requests; these pin the rules
down exactly: each pattern the document shows for a text field accepts precisely the values
its ``__post_init__`` check accepts, and the error answers are the documented ``ErrorBody``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from litestar import get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import create_test_client

from portal.app import create_app
from portal.errors import ErrorBody, NotFound, exception_handlers
from portal.openapi import ClosedStructs, ErrorResponses
from portal.settings import PortalSettings
from portal.validation import (
    EMAIL_PATTERN,
    NO_NUL_PATTERN,
    TIME_ZONES,
    VISIBLE_TEXT_PATTERN,
    check_email,
    check_text,
)

# Python's whitespace and its neighbours, NUL, and ordinary text: where the rules differ.
_TRICKY = st.sampled_from(["\x00", " ", "\t", "\x1c", "\x1f", "\x85", "\xa0", "\u3000", "@", "."])
TEXT = st.lists(st.one_of(_TRICKY, st.characters()), max_size=12).map("".join)


def _passes(check: Any, value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


@given(TEXT)
@example("a@b.c")
@example("a@b@c.d")
@example(" a@b.c")
def test_the_email_pattern_is_the_email_check(value: str) -> None:
    assert (re.search(EMAIL_PATTERN, value) is not None) == _passes(check_email, value)


@given(TEXT)
def test_the_no_nul_pattern_is_the_text_check(value: str) -> None:
    passes = _passes(lambda v: check_text("name", v), value)
    assert (re.search(NO_NUL_PATTERN, value) is not None) == passes


@given(TEXT)
@example("\x1f")
@example(" \u3000x ")
def test_the_visible_text_pattern_is_not_blank_and_no_nul(value: str) -> None:
    visible = "\x00" not in value and bool(value.strip())
    assert (re.search(VISIBLE_TEXT_PATTERN, value) is not None) == visible


def _document(*handlers: Any) -> dict[str, Any]:
    with create_test_client(list(handlers), plugins=[ErrorResponses(), ClosedStructs()]) as client:
        schema: dict[str, Any] = client.app.openapi_schema.to_schema()
    return schema


class _Closed(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class _Open(msgspec.Struct):
    name: str


def test_closed_request_bodies_say_additional_properties_false() -> None:
    @post("/closed")
    async def closed(data: JSONBody[_Closed]) -> _Open:
        return _Open(data.name)

    schemas = _document(closed)["components"]["schemas"]
    assert schemas["_Closed"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["_Open"]


def test_every_operation_documents_its_errors_as_error_bodies() -> None:
    @get("/things/{thing_id:int}")
    async def thing(thing_id: FromPath[int]) -> None:
        raise NotFound(f"thing {thing_id} not found")

    @post("/sign-in", opt={"public": True, "errors": (NotFound,)}, status_code=204)
    async def sign_in() -> None:
        return None

    paths = _document(thing, sign_in)["paths"]
    read = paths["/things/{thing_id}"]["get"]
    assert sorted(read["responses"]) == ["200", "400", "401", "404", "503"]
    assert read["security"] == [{"BearerToken": []}]
    error = read["responses"]["404"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    public = paths["/sign-in"]["post"]
    assert "security" not in public
    assert sorted(public["responses"]) == ["204", "400", "404", "503"]
    assert "content" not in public["responses"]["204"]


def test_error_answers_are_error_bodies() -> None:
    @get("/things/{thing_id:int}", opt={"public": True})
    async def thing(thing_id: FromPath[int]) -> None:
        raise NotFound(f"thing {thing_id} not found")

    with create_test_client([thing], exception_handlers=exception_handlers()) as client:
        missing = client.get("/things/7")
        malformed = client.get("/things/seven")
    assert missing.status_code == 404
    assert msgspec.json.decode(missing.content, type=ErrorBody) == ErrorBody(
        status_code=404, detail="thing 7 not found"
    )
    assert malformed.status_code == 404  # a path that does not match is no route at all
    assert msgspec.json.decode(malformed.content, type=ErrorBody).status_code == 404


def _portal_document() -> dict[str, Any]:
    """The portal's own document; building the app connects to nothing."""
    settings = PortalSettings(
        database_url="postgresql://ems:x@127.0.0.1:1/ems",
        jwt_secret="s" * 32,
        mqtt_username="portal",
        mqtt_password="unused",
    )
    document: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    return document


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_the_documented_time_zones_are_the_accepted_ones(zone: str) -> None:
    schemas = _portal_document()["components"]["schemas"]
    documented = schemas["UserCreate"]["properties"]["time_zone"]["enum"]
    assert zone in documented
    assert set(documented) == TIME_ZONES


def _bounds(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
                yield key, value
            else:
                yield from _bounds(value)
    elif isinstance(node, list):
        for item in node:
            yield from _bounds(item)


def test_integer_bounds_survive_a_double() -> None:
    # Validators compare JSON numbers as doubles: a maximum of 2**63 - 1 let 2**63 + 191
    # through as "valid", which the portal then refused.
    bounds = list(_bounds(_portal_document()))
    assert bounds
    for key, value in bounds:
        assert float(value) == value, (key, value)
