"""docs/api.md agrees with the portal's OpenAPI document (/schema), so the two cannot drift.

Every operation the page names exists, with that method; every operation the portal serves is
named on the page; and each status an example answers (``HTTP/1.1 409 …`` in an ``http``
block) is one the document lists for that operation. The WebSocket, which OpenAPI does not
describe, must be a WebSocket route of the app.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.routes import WebSocketRoute

from portal.app import create_app
from portal.settings import PortalSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METHODS = ("get", "post", "put", "patch", "delete")
_OPERATION = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[\w/{}.-]*)")
_EXAMPLE = re.compile(r"^```http\n(.*?)^```", re.DOTALL | re.MULTILINE)
_STATUS = re.compile(r"^HTTP/1\.1 (\d{3}) ", re.MULTILINE)
_ERROR_ROW = re.compile(r"^\| (\d{3}) \|", re.MULTILINE)


@cache
def _app() -> Litestar:
    """The portal as users run it; building it connects to nothing."""
    settings = PortalSettings(
        database_url="postgresql://ems:x@127.0.0.1:1/ems",
        jwt_secret="s" * 32,
        mqtt_username="portal",
        mqtt_password="unused",
    )
    return create_app(settings)


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = _app().openapi_schema.to_schema()["paths"]
    return paths


def _websockets() -> set[str]:
    return {route.path for route in _app().routes if isinstance(route, WebSocketRoute)}


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_operation_the_page_names_exists() -> None:
    paths, sockets = _paths(), _websockets()
    named = set(_OPERATION.findall(_text()))
    assert len(named) > 20, "the page names the API's operations as `METHOD /path`"
    missing = sorted(
        f"{method} {path}"
        for method, path in named
        if method.lower() not in paths.get(path, {}) and not (method == "GET" and path in sockets)
    )
    assert not missing, f"docs/api.md names operations the portal does not have: {missing}"


def test_every_operation_of_the_portal_is_on_the_page() -> None:
    named = set(_OPERATION.findall(_text()))
    served = {
        (method.upper(), path)
        for path, item in _paths().items()
        for method in item
        if method in METHODS
    }
    undocumented = sorted(f"{m} {p}" for m, p in served - named)
    assert not undocumented, f"add these to docs/api.md: {undocumented}"
    assert all(("GET", path) in named for path in _websockets()), "document the WebSocket"


def test_every_status_an_example_answers_is_documented_for_its_operation() -> None:
    paths = _paths()
    examples = _EXAMPLE.findall(_text())
    assert len(examples) >= 10
    checked = 0
    for block in examples:
        first = block.splitlines()[0]
        found = _OPERATION.match(first)
        assert found, f"an http example starts with its request line: {first!r}"
        method, path = found.groups()
        statuses = _STATUS.findall(block)
        assert statuses, f"{first}: the example shows no answer"
        documented = paths[path][method.lower()]["responses"]
        wrong = [s for s in statuses if s not in documented]
        assert not wrong, f"{method} {path} does not answer {wrong} (/schema: {sorted(documented)})"
        checked += len(statuses)
    assert checked > len(examples)  # errors are shown, not only successes


def test_the_error_table_lists_every_error_status_the_portal_answers() -> None:
    answered = {
        status
        for item in _paths().values()
        for method, operation in item.items()
        if method in METHODS
        for status in operation["responses"]
        if status >= "400"
    }
    assert set(_ERROR_ROW.findall(_text())) == answered
