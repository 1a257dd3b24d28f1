"""HTML pages: what every page handler shares (the page controllers are listed in portal.app).

Page handlers carry ``opt={"page": True}`` so errors render as pages (portal.errors) and a
client who opens an administrator's page is sent to their own. Forms post urlencoded fields,
including ``csrf_token``; the application's CSRF guard checks it for signed-in users, and the
sign-in and registration forms check theirs against the anonymous ``csrftoken`` cookie.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from portal.auth.cookies import anonymous_csrf_cookie
from portal.auth.guards import current_user
from portal.auth.schemas import AuthInfo, CurrentUser
from portal.auth.tokens import CSRF_COOKIE, anonymous_csrf_token, csrf_token_for
from portal.settings import PortalSettings

PAGE: dict[str, Any] = {"page": True}
PUBLIC_PAGE: dict[str, Any] = {"page": True, "public": True}
T = TypeVar("T")

NOTICES = {
    "user-created": "User created.",
    "user-updated": "User saved.",
    "user-deleted": "User deleted; their devices are now unassigned.",
    "device-updated": "Device saved.",
    "device-assigned": "Owner changed.",
    "device-deleted": "Device deleted and its meter credentials revoked.",
    "alert-acknowledged": "Alert acknowledged.",
    "alert-retracted": "That alert was retracted (the hour fell back under the limit).",
}


def home_for(user: CurrentUser | None) -> str:
    if user is None:
        return "/login"
    return "/admin/devices" if user.is_admin else "/devices"


def safe_next(target: str | None, user: CurrentUser) -> str:
    """Only a local path is followed after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return home_for(user)


def _settings(request: Request[Any, Any, Any]) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


def csrf_for(request: Request[Any, Any, Any]) -> tuple[str, Cookie | None]:
    """The token this page's forms must carry, and the cookie to (re)set if it is missing."""
    settings = _settings(request)
    auth = request.scope.get("auth")
    cookie = request.cookies.get(CSRF_COOKIE)
    if isinstance(auth, AuthInfo):
        token = csrf_token_for(settings.jwt_secret, auth.claims.jti)
        if cookie == token:
            return token, None
        fresh = anonymous_csrf_cookie(request, token)
        fresh.max_age = settings.token_ttl_s
        return token, fresh
    if cookie and 32 <= len(cookie) <= 128:
        return cookie, None
    token = anonymous_csrf_token()
    return token, anonymous_csrf_cookie(request, token)


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Template:
    token, cookie = csrf_for(request)
    notice = NOTICES.get(request.query_params.get("done", ""))
    return Template(
        template_name=template,
        context={"user": current_user(request), "csrf_token": token, "notice": notice, **context},
        status_code=status_code,
        cookies=[*(cookies or []), *([cookie] if cookie else [])],
    )


def see_other(path: str, *, cookies: list[Cookie] | None = None) -> Redirect:
    return Redirect(path, status_code=303, cookies=cookies or [])


async def form_data(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def from_form(
    form: dict[str, str],
    schema: type[T],
    *,
    fields: tuple[str, ...],
    blank_is_none: tuple[str, ...] = (),
) -> T:
    """Build a request schema from form fields: blanks are left out (or null), numbers parsed."""
    values: dict[str, Any] = {}
    for field in fields:
        raw = form.get(field)
        if raw is None:
            continue
        if raw.strip() == "":
            if field in blank_is_none:
                values[field] = None
            continue
        values[field] = raw
    return msgspec.convert(values, schema, strict=False)


def problem(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)
