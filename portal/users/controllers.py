"""/api/v1/users (administrators)."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from portal.auth.authenticator import Authenticator
from portal.auth.guards import requires_admin
from portal.errors import Conflict
from portal.users.providers import user_dependencies
from portal.users.schemas import UserCreate, UserOut, UserUpdate
from portal.users.services import UserService


class UserController(Controller):
    path = "/api/v1/users"
    tags = ("users",)
    guards = (requires_admin,)
    dependencies = user_dependencies()

    @get("/", summary="All users")
    async def list_users(self, users: NamedDependency[UserService]) -> list[UserOut]:
        return await users.list_users()

    @post("/", summary="Create a user", opt={"errors": (Conflict,)})
    async def create_user(
        self, users: NamedDependency[UserService], data: JSONBody[UserCreate]
    ) -> UserOut:
        return await users.create(data)

    @get("/{user_id:uuid}", summary="One user")
    async def get_user(
        self, users: NamedDependency[UserService], user_id: FromPath[uuid.UUID]
    ) -> UserOut:
        return await users.get(user_id)

    @patch(
        "/{user_id:uuid}",
        summary="Change a user; `password` resets their password",
        opt={"errors": (Conflict,)},
    )
    async def update_user(
        self,
        users: NamedDependency[UserService],
        authenticator: NamedDependency[Authenticator],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[UserUpdate],
    ) -> UserOut:
        updated = await users.update(user_id, data)
        authenticator.forget_user(user_id)
        return updated

    @delete("/{user_id:uuid}", summary="Delete a user; their devices stay, unassigned")
    async def delete_user(
        self,
        users: NamedDependency[UserService],
        authenticator: NamedDependency[Authenticator],
        user_id: FromPath[uuid.UUID],
    ) -> None:
        await users.delete(user_id)
        authenticator.forget_user(user_id)
