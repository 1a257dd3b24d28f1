"""The two browser cookies: the session (HttpOnly) and its CSRF token (readable by scripts)."""

from __future__ import annotations

from litestar.datastructures import Cookie

from portal.auth.tokens import CSRF_COOKIE, SESSION_COOKIE, IssuedToken, csrf_token_for
from portal.settings import PortalSettings


def session_cookies(settings: PortalSettings, issued: IssuedToken) -> list[Cookie]:
    common = {
        "path": "/",
        "samesite": "lax",
        "secure": settings.cookie_secure,
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


def anonymous_csrf_cookie(settings: PortalSettings, token: str) -> Cookie:
    return Cookie(
        key=CSRF_COOKIE,
        value=token,
        path="/",
        samesite="lax",
        httponly=False,
        secure=settings.cookie_secure,
    )


def cleared_cookies(settings: PortalSettings) -> list[Cookie]:
    return [
        Cookie(
            key=name,
            value="",
            path="/",
            max_age=0,
            samesite="lax",
            secure=settings.cookie_secure,
            httponly=name == SESSION_COOKIE,
        )
        for name in (SESSION_COOKIE, CSRF_COOKIE)
    ]
