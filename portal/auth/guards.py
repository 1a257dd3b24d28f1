"""Guards: every route needs a signed-in user unless its handler says ``opt={"public": True}``;
administrator routes add ``requires_admin``; cookie-authenticated writes need the CSRF token.

``requires_login`` and ``csrf_protect`` are installed on the application, so a route someone
forgets to protect is closed by default.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler

from portal.auth.schemas import AuthInfo, CurrentUser
from portal.auth.tokens import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, csrf_token_for, tokens_match
from portal.errors import AdminOnly, Forbidden, NotAuthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    user = connection.scope.get("user")
    return user if isinstance(user, CurrentUser) else None


def requires_login(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("public"):
        return
    if current_user(connection) is None:
        raise NotAuthenticated("sign in first: send a valid Bearer token or session cookie")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = current_user(connection)
    if user is None:
        raise NotAuthenticated("sign in first: send a valid Bearer token or session cookie")
    if not user.is_admin:
        raise AdminOnly("this needs an administrator")


async def csrf_protect(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Double submit: the ``csrftoken`` cookie echoed in ``X-CSRF-Token`` or the form field.

    Only writes authenticated by the session cookie are at risk (a browser attaches cookies to
    cross-site requests; it never attaches an Authorization header on its own), so Bearer and
    anonymous requests pass. The token is derived from the session, so a cookie planted by a
    sibling site cannot be paired with a matching header. Public handlers (sign-in,
    registration) do not act with the caller's authority, so a stale cookie does not matter.
    """
    auth = connection.scope.get("auth")
    if connection.scope["type"] != ScopeType.HTTP or not isinstance(auth, AuthInfo):
        return
    if handler.opt.get("public"):
        return
    if auth.via != "cookie" or connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    presented = connection.headers.get(CSRF_HEADER)
    content_type = connection.headers.get("content-type", "")
    if not presented and content_type.startswith(_FORM_TYPES) and isinstance(connection, Request):
        value = (await connection.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    cookie = connection.cookies.get(CSRF_COOKIE)
    expected = csrf_token_for(connection.app.state.settings.jwt_secret, auth.claims.jti)
    if not (tokens_match(presented, cookie) and tokens_match(cookie, expected)):
        raise Forbidden(
            "missing or wrong CSRF token: echo the csrftoken cookie in the X-CSRF-Token header"
        )
