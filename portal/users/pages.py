"""Administrator pages for users: list and create, edit (incl. password reset), delete."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from portal.auth.authenticator import Authenticator
from portal.auth.guards import requires_admin
from portal.errors import BadRequest, Conflict, Forbidden
from portal.pagekit import PAGE, form_data, from_form, problem, render, see_other
from portal.users.providers import user_dependencies
from portal.users.schemas import UserCreate, UserUpdate
from portal.users.services import UserService

Users = NamedDependency[UserService]
_EXPECTED = (msgspec.ValidationError, BadRequest, Conflict, Forbidden)
_CREATE_FIELDS = ("username", "password", "role", "name", "email", "time_zone")
_UPDATE_FIELDS = ("username", "name", "email", "role", "time_zone", "password")


class AdminUserPages(Controller):
    path = "/admin/users"
    guards = (requires_admin,)
    opt = PAGE
    include_in_schema = False
    dependencies = user_dependencies()

    @get("/")
    async def users_page(self, request: Request[Any, Any, Any], users: Users) -> Template:
        return render(request, "admin/users.html", users=await users.list_users(), form={})

    @post("/", status_code=303)
    async def create_user(
        self, request: Request[Any, Any, Any], users: Users
    ) -> Redirect | Template:
        form = await form_data(request)
        try:
            await users.create(from_form(form, UserCreate, fields=_CREATE_FIELDS))
        except _EXPECTED as exc:
            return render(
                request,
                "admin/users.html",
                status_code=400,
                error=problem(exc),
                users=await users.list_users(),
                form=form,
            )
        return see_other("/admin/users?done=user-created")

    @get("/{user_id:uuid}")
    async def user_page(
        self, request: Request[Any, Any, Any], users: Users, user_id: FromPath[uuid.UUID]
    ) -> Template:
        return render(request, "admin/user.html", subject=await users.get(user_id))

    @post("/{user_id:uuid}", status_code=303)
    async def update_user(
        self,
        request: Request[Any, Any, Any],
        users: Users,
        authenticator: NamedDependency[Authenticator],
        user_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        form = await form_data(request)
        try:
            data = from_form(form, UserUpdate, fields=_UPDATE_FIELDS, blank_is_none=("email",))
            await users.update(user_id, data)
        except _EXPECTED as exc:
            return render(
                request,
                "admin/user.html",
                status_code=400,
                error=problem(exc),
                subject=await users.get(user_id),
            )
        authenticator.forget_user(user_id)
        return see_other(f"/admin/users/{user_id}?done=user-updated")

    @post("/{user_id:uuid}/delete", status_code=303)
    async def delete_user(
        self,
        request: Request[Any, Any, Any],
        users: Users,
        authenticator: NamedDependency[Authenticator],
        user_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        try:
            await users.delete(user_id)
        except Forbidden as exc:
            return render(
                request,
                "admin/user.html",
                status_code=403,
                error=problem(exc),
                subject=await users.get(user_id),
            )
        authenticator.forget_user(user_id)
        return see_other("/admin/users?done=user-deleted")
