"""``ems-sim provision``: create devices through the portal and write their meter files.

MQTT passwords are shown once by the portal, so whatever was created is written out even when
a later request fails (and the error says how many made it). An existing output is never
overwritten without ``--force``: it may hold the only copy of other credentials.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from uuid import UUID

from device_sim.config import BrokerOptions, ConfigError, MeterEntry
from device_sim.config_writer import write_fleet, write_meter_files
from device_sim.portal_api import PortalClient, PortalError


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    count: int
    out: Path
    name_prefix: str = "sim"
    owner: str | None = None
    split: bool = False
    force: bool = False
    interval_s: int = 600
    max_hourly_kwh: float = 5.0
    meter_kind: str = "cumulative"
    rated_power_w: float | None = None
    concurrency: int = 8
    broker: BrokerOptions | None = None


def check_output(req: ProvisionRequest) -> None:
    if req.count < 1:
        raise ConfigError("--count must be at least 1")
    out = req.out
    if req.split:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out} exists and is not a directory (--split writes one per meter)")
        clash = list(out.glob("*.toml")) if out.is_dir() else []
        if clash and not req.force:
            raise ConfigError(f"{out} already holds meter files - choose another or pass --force")
    elif out.exists() and not req.force:
        raise ConfigError(
            f"{out} exists and may hold credentials shown only once - choose another --out "
            "or pass --force"
        )


async def provision(api: PortalClient, req: ProvisionRequest, out: TextIO) -> list[MeterEntry]:
    owner_id: UUID | None = await api.user_id(req.owner) if req.owner else None
    created: dict[int, MeterEntry] = {}
    gate = asyncio.Semaphore(req.concurrency)
    last_report = time.monotonic()

    async def one(i: int) -> None:
        nonlocal last_report
        name = f"{req.name_prefix}-{i + 1:05d}"
        async with gate:
            device = await api.create_device(
                name,
                max_hourly_kwh=req.max_hourly_kwh,
                interval_s=req.interval_s,
                meter_kind=req.meter_kind,
                rated_power_w=req.rated_power_w,
                description="simulated meter (ems-sim provision)",
            )
            try:
                meter_id = UUID(device.mqtt_username)
            except ValueError:
                raise PortalError(
                    f"device {device.id}: MQTT user name {device.mqtt_username!r} is not its "
                    "device id - this portal does not follow the meter contract"
                ) from None
            created[i] = MeterEntry(meter_id, device.mqtt_password, name)
            if owner_id is not None:
                await api.set_owner(device.id, owner_id)
        if time.monotonic() - last_report >= 2.0:
            last_report = time.monotonic()
            print(f"ems-sim provision: {len(created)}/{req.count} devices", file=out, flush=True)

    failure: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(req.count):
                group.create_task(one(i))
    except* PortalError as errors:
        failure = errors.exceptions[0]
    meters = [created[i] for i in sorted(created)]
    if meters:
        written = _write(req, meters)
        print(f"ems-sim provision: {len(meters)} devices -> {written}", file=out, flush=True)
    if failure is not None:
        raise PortalError(
            f"{failure} - {len(meters)} of {req.count} devices were created"
            + (f"; their credentials are in {req.out}" if meters else "")
        )
    return meters


def _write(req: ProvisionRequest, meters: list[MeterEntry]) -> str:
    if req.split:
        paths = write_meter_files(req.out, meters, req.broker)
        return f"{len(paths)} files in {req.out}/"
    write_fleet(req.out, meters, req.broker)
    return str(req.out)
