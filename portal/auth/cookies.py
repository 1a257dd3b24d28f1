"""The two browser cookies: the session (HttpOnly) and its CSRF token (readable by scripts).

Both are ``Secure`` when ``PORTAL_COOKIE_SECURE`` says so, and whenever the request itself came
over https — directly, or as a trusted proxy's ``X-Forwarded-Proto`` says (portal.app sets the
scheme from it) — so a portal behind TLS never hands out a cookie a browser would send over
plain HTTP.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from portal.auth.tokens import CSRF_COOKIE, SESSION_COOKIE, IssuedToken, csrf_token_for
from portal.settings import PortalSettings

Connection = ASGIConnection[Any, Any, Any, Any]


def _settings(connection: Connection) -> PortalSettings:
    settings: PortalSettings = connection.app.state.settings
    return settings


def secure(connection: Connection) -> bool:
    return _settings(connection).cookie_secure or connection.scope.get("scheme") in {
        "https",
        "wss",
    }


def session_cookies(connection: Connection, issued: IssuedToken) -> list[Cookie]:
    settings = _settings(connection)
    common = {
        "path": "/",
        "samesite": "lax",
        "secure": secure(connection),
        "max_age": settings.token_ttl_s,
    }
    return [
        Cookie(key=SESSION_COOKIE, value=issued.token, httponly=True, **common),  # type: ignore[arg-type]
        Cookie(
            key=CSRF_COOKIE,
            value=csrf_token_for(settings.jwt_secret, issued.claims.jti),
            httponly=False,
            **common,  # type: ignore[arg-type]
        ),
    ]


def anonymous_csrf_cookie(connection: Connection, token: str) -> Cookie:
    return Cookie(
        key=CSRF_COOKIE,
        value=token,
        path="/",
        samesite="lax",
        httponly=False,
        secure=secure(connection),
    )


def cleared_cookies(connection: Connection) -> list[Cookie]:
    return [
        Cookie(
            key=name,
            value="",
            path="/",
            max_age=0,
            samesite="lax",
            secure=secure(connection),
            httponly=name == SESSION_COOKIE,
        )
        for name in (SESSION_COOKIE, CSRF_COOKIE)
    ]
