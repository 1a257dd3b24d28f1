"""/api/v1/auth/* and /api/v1/me."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response

from portal.auth.cookies import cleared_cookies, session_cookies
from portal.auth.providers import auth_dependencies
from portal.auth.schemas import (
    AuthInfo,
    CurrentUser,
    LoginRequest,
    LoginResponse,
    RegisterRequest,
    RegistrationReceived,
)
from portal.auth.services import REGISTRATION_RECEIVED, AuthService
from portal.auth.tokens import csrf_token_for
from portal.errors import Forbidden, NotAuthenticated, TooManyRequests
from portal.settings import PortalSettings

Auth = NamedDependency[AuthService]
Settings = NamedDependency[PortalSettings]


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ("auth",)
    dependencies = auth_dependencies()

    @post(
        "/login",
        status_code=200,
        opt={"public": True, "errors": (NotAuthenticated, TooManyRequests)},
        security=[],
        summary="Sign in: the token in the body (Bearer) and as an HttpOnly cookie",
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        auth: Auth,
        settings: Settings,
        data: JSONBody[LoginRequest],
    ) -> Response[LoginResponse]:
        issued, user = await auth.login(data.username, data.password, client_address(request))
        body = LoginResponse(
            access_token=issued.token,
            token=issued.token,
            expires_at=issued.claims.expires_at,
            csrf_token=csrf_token_for(settings.jwt_secret, issued.claims.jti),
            user=user,
        )
        return Response(body, cookies=session_cookies(request, issued))

    @post("/logout", status_code=204, summary="Sign out: the token stops working everywhere")
    async def logout(self, request: Request[Any, Any, Any], auth: Auth) -> Response[None]:
        info = request.scope.get("auth")
        if not isinstance(info, AuthInfo):
            raise NotAuthenticated("not signed in")
        await auth.logout(info.claims)
        return Response(None, status_code=204, cookies=cleared_cookies(request))

    @post(
        "/register",
        status_code=202,
        opt={"public": True, "errors": (Forbidden, TooManyRequests)},
        security=[],
        summary="Self-registration of a client: 202 whether or not the user name was free, "
        "so it reveals no account; sign in to use it (403 when turned off)",
    )
    async def register(
        self, request: Request[Any, Any, Any], auth: Auth, data: JSONBody[RegisterRequest]
    ) -> RegistrationReceived:
        await auth.register(data, client_address(request))
        return RegistrationReceived(detail=REGISTRATION_RECEIVED)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ("auth",)

    @get("/", summary="The signed-in user")
    async def me(self, current_user: NamedDependency[CurrentUser]) -> CurrentUser:
        return current_user
