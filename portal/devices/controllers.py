"""/api/v1/devices: everyone signed in reads (clients their own); administrators change."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.auth.guards import requires_admin
from portal.devices.providers import device_dependencies
from portal.devices.schemas import (
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DeviceUpdate,
    MeterCredentials,
    OwnerAssignment,
)
from portal.devices.services import DeviceService
from portal.errors import Unprocessable

Devices = NamedDependency[DeviceService]
OwnerFilter = Annotated[uuid.UUID | None, QueryParameter(description="only this owner's devices")]


class DeviceController(Controller):
    path = "/api/v1/devices"
    tags = ("devices",)
    dependencies = device_dependencies()

    @get("/", summary="Devices: all of them for administrators, a client's own for clients")
    async def list_devices(self, devices: Devices, owner_id: OwnerFilter = None) -> list[DeviceOut]:
        return await devices.list_devices(owner_id)

    @post(
        "/",
        guards=[requires_admin],
        summary="Create a device and its meter credentials (the password is shown only here)",
    )
    async def create_device(self, devices: Devices, data: JSONBody[DeviceCreate]) -> DeviceCreated:
        return await devices.create(data)

    @get("/{device_id:uuid}", summary="One device (a client's own only)")
    async def get_device(self, devices: Devices, device_id: FromPath[uuid.UUID]) -> DeviceOut:
        return await devices.get(device_id)

    @patch("/{device_id:uuid}", guards=[requires_admin], summary="Change a device")
    async def update_device(
        self, devices: Devices, device_id: FromPath[uuid.UUID], data: JSONBody[DeviceUpdate]
    ) -> DeviceOut:
        return await devices.update(device_id, data)

    @delete(
        "/{device_id:uuid}",
        guards=[requires_admin],
        summary="Delete a device and revoke its meter credentials",
    )
    async def delete_device(self, devices: Devices, device_id: FromPath[uuid.UUID]) -> None:
        await devices.delete(device_id)

    @put(
        "/{device_id:uuid}/owner",
        guards=[requires_admin],
        summary="Assign or unassign (422: no such client)",
        opt={"errors": (Unprocessable,)},
    )
    async def set_owner(
        self, devices: Devices, device_id: FromPath[uuid.UUID], data: JSONBody[OwnerAssignment]
    ) -> DeviceOut:
        return await devices.set_owner(device_id, data.owner_id)

    @post(
        "/{device_id:uuid}/credentials",
        status_code=200,
        guards=[requires_admin],
        summary="Rotate the meter's MQTT password (the new one is shown only here)",
    )
    async def rotate_credentials(
        self, devices: Devices, device_id: FromPath[uuid.UUID]
    ) -> MeterCredentials:
        return await devices.rotate_credentials(device_id)
