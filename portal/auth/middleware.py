"""Authentication middleware: it identifies the caller and never refuses anyone.

Refusing is the guards' job (``portal.auth.guards``), so a public page can still know who is
looking at it. A Bearer header wins over the session cookie.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.auth.authenticator import Authenticator
from portal.auth.schemas import AuthInfo
from portal.auth.tokens import SESSION_COOKIE


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def session_cookie(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is treated as no cookie
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


class AuthenticationMiddleware(ASGIMiddleware):
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = None
        scope["auth"] = None
        if scope["type"] in ("http", "websocket"):
            token, via = None, "cookie"
            authorization = _header(scope, b"authorization")
            if authorization and authorization[:7].lower() == "bearer ":
                token, via = authorization[7:].strip(), "bearer"
            else:
                token = session_cookie(scope)
            if token:
                found = await self.authenticator.authenticate(token)
                if found is not None:
                    user, claims = found
                    scope["user"] = user
                    scope["auth"] = AuthInfo(claims, "bearer" if via == "bearer" else "cookie")
        await next_app(scope, receive, send)
