"""One error tree for the portal, mapped to HTTP responses once (``exception_handlers``).

Services raise these; controllers never build error responses themselves. API paths answer
an ``ErrorBody`` (``{"status_code": 404, "detail": "..."}``), the shape the OpenAPI document
promises for every error (portal/openapi.py documents each operation's from this tree); HTML
pages redirect (not logged in → /login, not an administrator → the user's own page) or render a
short error page.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger("portal")


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error the API answers: the HTTP status again and what went wrong, in words."""

    status_code: int
    detail: str


class PortalError(Exception):
    """Base of the tree: a message a person can act on, and its HTTP status.

    ``summary`` is how the OpenAPI document describes the status (one per status code)."""

    status_code: ClassVar[int] = 400
    summary: ClassVar[str] = "The request is malformed or a value is out of range"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(PortalError):
    status_code = 400


class NotAuthenticated(PortalError):
    status_code = 401
    summary = "Not signed in: no valid Bearer token or session cookie"


class Forbidden(PortalError):
    status_code = 403
    summary = "Not allowed: needs an administrator, a CSRF token, or is turned off"


class AdminOnly(Forbidden):
    """A signed-in client reached an administrator's route (pages send them home instead)."""


class NotFound(PortalError):
    status_code = 404
    summary = "No such resource (or not the caller's)"


class Conflict(PortalError):
    status_code = 409
    summary = "Conflicts with the current state (a name taken, an alert retracted…)"


class Unprocessable(PortalError):
    """Well-formed by the schema, but the values do not make sense together or refer to
    something that does not exist (a range too long, from after to, an unknown owner).

    400 stays for what the document itself rules out, so a client that follows the schema
    gets 400s only from its own bugs."""

    status_code = 422
    summary = "Well-formed, but the values contradict each other or the data"


class TooManyRequests(PortalError):
    status_code = 429
    summary = "Too many requests: wait for Retry-After seconds"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(PortalError):
    status_code = 503
    summary = "The database or the MQTT broker is unavailable, or the portal is busy"


def is_api(request: Request[Any, Any, Any]) -> bool:
    """HTML pages are handlers with ``opt={"page": True}``; everything else answers JSON."""
    handler = request.scope.get("route_handler")
    return not (handler is not None and handler.opt.get("page"))


def _json(detail: str, status: int, headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(
        ErrorBody(status_code=status, detail=detail),
        status_code=status,
        headers=headers,
        media_type=MediaType.JSON,
    )


def _page(request: Request[Any, Any, Any], detail: str, status: int) -> Response[Any]:
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target, safe='')}", status_code=303)
    return Template(
        template_name="error.html",
        context={"status": status, "detail": detail, "user": request.scope.get("user")},
        status_code=status,
    )


def _portal_error(request: Request[Any, Any, Any], exc: PortalError) -> Response[Any]:
    if not is_api(request):
        if isinstance(exc, AdminOnly):
            return Redirect("/devices", status_code=303)
        return _page(request, exc.detail, exc.status_code)
    headers: dict[str, str] = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="ems"'
    return _json(exc.detail, exc.status_code, headers=headers or None)


def _validation_message(exc: ValidationException) -> str:
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for problem in problems:
        if isinstance(problem, dict):
            key, message = problem.get("key"), problem.get("message", "invalid value")
            key = None if key == "data" else key
            parts.append(f"{key}: {message}" if key else str(message))
    return "invalid request — " + "; ".join(parts) if parts else str(exc.detail)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = _validation_message(exc) if isinstance(exc, ValidationException) else exc.detail
    if not is_api(request):
        return _page(request, detail, exc.status_code)
    return _json(detail, exc.status_code, headers=exc.headers or None)


def _data_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Validation in the schemas should catch bad input first; this is the safety net.
    log.warning("database refused a value on %s: %s", request.url.path, str(exc)[:200])
    status, detail = (
        (409, "the change conflicts with existing data")
        if isinstance(exc, IntegrityError)
        else (400, "a value in the request is not acceptable")
    )
    return _json(detail, status) if is_api(request) else _page(request, detail, status)


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("database unavailable: %s", str(exc)[:200])
    detail = "the database is unavailable — try again shortly"
    return _json(detail, 503) if is_api(request) else _page(request, detail, 503)


def _busy(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Every pooled database connection stayed in use for pool_timeout: overload, not a bug.
    log.warning("no free database connection for %s: %s", request.url.path, str(exc)[:200])
    detail = "the portal is busy — try again in a moment"
    if not is_api(request):
        return _page(request, detail, 503)
    return _json(detail, 503, headers={"Retry-After": "2"})


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    detail = "internal error — it has been logged"
    return _json(detail, 500) if is_api(request) else _page(request, detail, 500)


def exception_handlers() -> ExceptionHandlersMap:
    return {
        PortalError: _portal_error,
        HTTPException: _http_error,
        DataError: _data_error,
        IntegrityError: _data_error,
        OperationalError: _database_down,
        PoolTimeout: _busy,
        Exception: _internal,
    }
