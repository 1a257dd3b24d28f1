"""Sign-in, registration and sign-out pages."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from portal.auth.controllers import client_address
from portal.auth.cookies import cleared_cookies, session_cookies
from portal.auth.guards import current_user
from portal.auth.providers import auth_dependencies
from portal.auth.schemas import AuthInfo, RegisterRequest
from portal.auth.services import AuthService
from portal.auth.tokens import CSRF_COOKIE, CSRF_FIELD, tokens_match
from portal.errors import Forbidden, NotAuthenticated, TooManyRequests
from portal.pagekit import (
    PAGE,
    PUBLIC_PAGE,
    form_data,
    from_form,
    home_for,
    problem,
    render,
    safe_next,
    see_other,
)
from portal.settings import PortalSettings

Auth = NamedDependency[AuthService]
Settings = NamedDependency[PortalSettings]
_FORM_EXPIRED = "the form expired — please try again"
_NAME_NOT_AVAILABLE = (
    "that user name is not available — choose another one (if the account is yours, sign in)"
)


def _form_is_ours(request: Request[Any, Any, Any], form: dict[str, str]) -> bool:
    """Sign-in and registration have no session yet: their token pairs with the cookie."""
    return tokens_match(form.get(CSRF_FIELD), request.cookies.get(CSRF_COOKIE))


class AuthPages(Controller):
    include_in_schema = False
    dependencies = auth_dependencies()

    @get("/", opt=PUBLIC_PAGE)
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        return see_other(home_for(current_user(request)))

    @get("/login", opt=PUBLIC_PAGE)
    async def login_page(
        self, request: Request[Any, Any, Any], settings: Settings
    ) -> Redirect | Template:
        user = current_user(request)
        if user is not None:
            return see_other(home_for(user))
        return render(
            request,
            "login.html",
            next=request.query_params.get("next", ""),
            allow_registration=settings.allow_registration,
        )

    @post("/login", opt=PUBLIC_PAGE, status_code=303)
    async def login(
        self, request: Request[Any, Any, Any], auth: Auth, settings: Settings
    ) -> Redirect | Template:
        form = await form_data(request)
        username, target = form.get("username", ""), form.get("next", "")
        status, error = 400, _FORM_EXPIRED
        if _form_is_ours(request, form):
            try:
                issued, user = await auth.login(
                    username[:64], form.get("password", "")[:256], client_address(request)
                )
            except (NotAuthenticated, TooManyRequests) as exc:
                status, error = exc.status_code, exc.detail
            else:
                return see_other(safe_next(target, user), cookies=session_cookies(request, issued))
        return render(
            request,
            "login.html",
            status_code=status,
            error=error,
            username=username,
            next=target,
            allow_registration=settings.allow_registration,
        )

    @get("/register", opt=PUBLIC_PAGE)
    async def register_page(self, request: Request[Any, Any, Any], settings: Settings) -> Template:
        return render(
            request,
            "register.html",
            allow_registration=settings.allow_registration,
            status_code=200 if settings.allow_registration else 403,
        )

    @post("/register", opt=PUBLIC_PAGE, status_code=303)
    async def register(
        self, request: Request[Any, Any, Any], auth: Auth, settings: Settings
    ) -> Redirect | Template:
        form = await form_data(request)
        error = _FORM_EXPIRED
        if _form_is_ours(request, form):
            fields = ("username", "password", "name", "email", "time_zone")
            try:
                data = from_form(form, RegisterRequest, fields=fields)
                await auth.register(data, client_address(request))
                # Registration answers the same whether or not the name was free; signing in
                # with what was just chosen is how the registrant learns it worked.
                issued, user = await auth.login(
                    data.username, data.password, client_address(request)
                )
                return see_other(home_for(user), cookies=session_cookies(request, issued))
            except NotAuthenticated:
                error = _NAME_NOT_AVAILABLE
            except (msgspec.ValidationError, Forbidden, TooManyRequests) as exc:
                error = problem(exc)
        return render(
            request,
            "register.html",
            status_code=400,
            error=error,
            form=form,
            allow_registration=settings.allow_registration,
        )

    @post("/logout", opt=PAGE, status_code=303)
    async def logout(self, request: Request[Any, Any, Any], auth: Auth) -> Redirect:
        info = request.scope.get("auth")
        if isinstance(info, AuthInfo):
            await auth.logout(info.claims)
        return see_other("/login", cookies=cleared_cookies(request))
