"""Device pages: administrators manage the fleet; a client sees their own devices."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from portal.auth.guards import current_user, requires_admin
from portal.devices.providers import device_dependencies
from portal.devices.schemas import DeviceCreate, DeviceUpdate, OwnerAssignment
from portal.devices.services import DeviceService
from portal.errors import BadRequest, ServiceUnavailable
from portal.pagekit import PAGE, form_data, from_form, problem, render, see_other
from portal.users.providers import user_dependencies
from portal.users.services import UserService

Devices = NamedDependency[DeviceService]
Users = NamedDependency[UserService]
T = TypeVar("T")
# What a form's change can be refused for: shown on the form's page (400) with the reason.
_EXPECTED = (msgspec.ValidationError, BadRequest, ServiceUnavailable)
# Credentials and deletion have no form: only the broker can refuse them (503).
_BROKER_AWAY = (ServiceUnavailable,)
_FIELDS = (
    "name",
    "description",
    "address",
    "max_hourly_kwh",
    "meter_kind",
    "rated_power_w",
    "interval_s",
)


async def _clients(users: UserService) -> list[Any]:
    return [u for u in await users.list_users() if u.role == "client"]


class ClientPages(Controller):
    path = "/devices"
    opt = PAGE
    include_in_schema = False
    dependencies = device_dependencies()

    @get("/")
    async def my_devices(
        self, request: Request[Any, Any, Any], devices: Devices
    ) -> Template | Redirect:
        user = current_user(request)
        if user is not None and user.is_admin:
            return see_other("/admin/devices")
        return render(request, "client/devices.html", devices=await devices.list_devices())


@dataclass(frozen=True, slots=True)
class _DevicePage:
    """One device's administration page, shown again with the reason when a change is refused."""

    request: Request[Any, Any, Any]
    devices: DeviceService
    users: UserService
    device_id: uuid.UUID

    async def show(self, *, status_code: int = 200, error: str | None = None) -> Template:
        return render(
            self.request,
            "admin/device.html",
            status_code=status_code,
            error=error,
            device=await self.devices.get(self.device_id),
            clients=await _clients(self.users),
        )

    async def attempt(
        self,
        change: Callable[[], Awaitable[T]],
        *,
        refused: tuple[type[Exception], ...] = _EXPECTED,
        status_code: int = 400,
    ) -> T | Template:
        """What ``change`` returns or, if it is refused for a reason the administrator can act
        on, this page again with that reason."""
        try:
            return await change()
        except refused as exc:
            return await self.show(status_code=status_code, error=problem(exc))


class AdminDevicePages(Controller):
    path = "/admin/devices"
    guards = (requires_admin,)
    opt = PAGE
    include_in_schema = False
    dependencies = device_dependencies() | user_dependencies()

    @get("/")
    async def devices_page(
        self, request: Request[Any, Any, Any], devices: Devices, users: Users
    ) -> Template:
        return render(
            request,
            "admin/devices.html",
            devices=await devices.list_devices(),
            clients=await _clients(users),
            form={},
        )

    @post("/", status_code=200)
    async def create_device(
        self, request: Request[Any, Any, Any], devices: Devices, users: Users
    ) -> Template:
        form = await form_data(request)
        try:
            created = await devices.create(from_form(form, DeviceCreate, fields=_FIELDS))
        except _EXPECTED as exc:
            return render(
                request,
                "admin/devices.html",
                status_code=400,
                error=problem(exc),
                devices=await devices.list_devices(),
                clients=await _clients(users),
                form=form,
            )
        # Shown once, never redirected to: a reload must not be able to show it again.
        return render(
            request,
            "admin/secret.html",
            device=created,
            username=created.mqtt_username,
            password=created.mqtt_password,
            created=True,
        )

    @get("/{device_id:uuid}")
    async def device_page(
        self,
        request: Request[Any, Any, Any],
        devices: Devices,
        users: Users,
        device_id: FromPath[uuid.UUID],
    ) -> Template:
        return await _DevicePage(request, devices, users, device_id).show()

    @post("/{device_id:uuid}", status_code=303)
    async def update_device(
        self,
        request: Request[Any, Any, Any],
        devices: Devices,
        users: Users,
        device_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        form = await form_data(request)

        async def change() -> None:
            data = from_form(form, DeviceUpdate, fields=_FIELDS, blank_is_none=("rated_power_w",))
            await devices.update(device_id, data)

        refusal = await _DevicePage(request, devices, users, device_id).attempt(change)
        if refusal is not None:
            return refusal
        return see_other(f"/admin/devices/{device_id}?done=device-updated")

    @post("/{device_id:uuid}/owner", status_code=303)
    async def set_owner(
        self,
        request: Request[Any, Any, Any],
        devices: Devices,
        users: Users,
        device_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        form = await form_data(request)

        async def change() -> None:
            owner = ("owner_id",)
            data = from_form(form, OwnerAssignment, fields=owner, blank_is_none=owner)
            await devices.set_owner(device_id, data.owner_id)

        refusal = await _DevicePage(request, devices, users, device_id).attempt(change)
        if refusal is not None:
            return refusal
        return see_other(f"/admin/devices/{device_id}?done=device-assigned")

    @post("/{device_id:uuid}/credentials", status_code=200)
    async def rotate_credentials(
        self,
        request: Request[Any, Any, Any],
        devices: Devices,
        users: Users,
        device_id: FromPath[uuid.UUID],
    ) -> Template:
        page = _DevicePage(request, devices, users, device_id)
        credentials = await page.attempt(
            lambda: devices.rotate_credentials(device_id), refused=_BROKER_AWAY, status_code=503
        )
        if isinstance(credentials, Template):
            return credentials
        return render(
            request,
            "admin/secret.html",
            device=await devices.get(device_id),
            username=credentials.mqtt_username,
            password=credentials.mqtt_password,
            created=False,
        )

    @post("/{device_id:uuid}/delete", status_code=303)
    async def delete_device(
        self,
        request: Request[Any, Any, Any],
        devices: Devices,
        users: Users,
        device_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        refusal = await _DevicePage(request, devices, users, device_id).attempt(
            lambda: devices.delete(device_id), refused=_BROKER_AWAY, status_code=503
        )
        if refusal is not None:
            return refusal
        return see_other("/admin/devices?done=device-deleted")
