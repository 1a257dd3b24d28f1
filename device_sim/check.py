"""``ems-sim check``: a conformance test of a live deployment.

Publish a known series as a meter (a device provisioned for the check, or one from
configuration), then read the hourly energy back through the portal API until it matches what
was sent, or time runs out. Exit status 0 on a match, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO
from uuid import UUID

import aiomqtt
import httpx

from contract.payloads import Reading
from contract.readings import MAX_BATCH, encode_readings
from contract.topics import readings_topic
from device_sim.check_series import HOUR, compare, expected_hourly, known_series, report, verdict
from device_sim.plan import BrokerPlan
from device_sim.portal_api import PortalClient, PortalError
from device_sim.timeparse import floor_time


@dataclass(frozen=True, slots=True)
class CheckRequest:
    portal_url: str
    admin_user: str
    admin_password: str
    broker: BrokerPlan
    device: tuple[UUID, str] | None = None
    hours: int = 3
    timeout_s: float = 60.0
    keep: bool = False
    seed: int = 1
    poll_s: float = 1.0
    end: datetime | None = None  # the series ends at this hour; None: the current hour


Publisher = Callable[[BrokerPlan, UUID, str, list[tuple[datetime, float]]], Awaitable[None]]


async def publish_series(
    broker: BrokerPlan, device_id: UUID, password: str, series: list[tuple[datetime, float]]
) -> None:
    tls = ssl.create_default_context(cafile=broker.ca_file) if broker.tls else None
    readings = [Reading(device_id, ts, energy) for ts, energy in series]
    try:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=str(device_id),
            password=password,
            identifier=f"{device_id}",
            tls_context=tls,
            protocol=aiomqtt.ProtocolVersion.V5,
        ) as client:
            for i in range(0, len(readings), MAX_BATCH):
                payload = encode_readings(readings[i : i + MAX_BATCH])
                await client.publish(readings_topic(device_id), payload, qos=1)
    except aiomqtt.MqttError as exc:
        raise PortalError(
            f"cannot publish to the broker at {broker.host}:{broker.port} as {device_id}: {exc}"
        ) from None


async def stored_hours(
    api: PortalClient, device_id: UUID, first: datetime, last: datetime
) -> dict[datetime, tuple[float, str]]:
    # The API's days are the admin's local days: ask for every day around the series.
    days = {(first + timedelta(days=d)).date() for d in range(-1, (last - first).days + 2)}
    out: dict[datetime, tuple[float, str]] = {}
    for day in sorted(days):
        for row in await api.hourly(device_id, day):
            out[row.hour.astimezone(UTC)] = (row.energy_kwh, row.quality)
    return out


async def run_check(
    req: CheckRequest,
    out: TextIO,
    *,
    publish: Publisher = publish_series,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    async with PortalClient(req.portal_url, transport=transport) as api:
        await api.login(req.admin_user, req.admin_password)
        created = None
        if req.device is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            created = await api.create_device(f"ems-sim check {stamp}", max_hourly_kwh=1000.0)
            device_id, password = UUID(created.mqtt_username), created.mqtt_password
        else:
            device_id, password = req.device
        try:
            return await _check(api, req, device_id, password, created is not None, out, publish)
        finally:
            if created is not None and not req.keep:
                await api.delete_device(created.id)


async def _check(
    api: PortalClient,
    req: CheckRequest,
    device_id: UUID,
    password: str,
    new: bool,
    out: TextIO,
    publish: Publisher,
) -> int:
    end = floor_time(req.end or datetime.now(UTC), HOUR)
    series = known_series(end, req.hours, req.seed)
    expected = expected_hourly(series)
    what = "provisioned for this check" + ("" if req.keep else ", deleted afterwards")
    print(f"ems-sim check: device {device_id} ({what if new else 'from configuration'})", file=out)
    await publish(req.broker, device_id, password, series)
    print(
        f"  published {len(series)} readings {series[0][0]:%Y-%m-%dT%H:%MZ} .. "
        f"{series[-1][0]:%H:%MZ}, acknowledged by the broker; waiting for the hourly energy",
        file=out,
        flush=True,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    republished = False
    while True:
        checks = compare(expected, await stored_hours(api, device_id, series[0][0], end))
        ok, text = verdict(checks)
        elapsed = loop.time() - started
        if ok or elapsed >= req.timeout_s:
            break
        nothing = all(c.stored is None for c in checks)
        if nothing and not republished and elapsed >= req.timeout_s / 2:
            # A device created a moment ago may not have reached every hub yet; readings are
            # idempotent, so sending them again is harmless.
            republished = True
            await publish(req.broker, device_id, password, series)
        await asyncio.sleep(req.poll_s)
    print(report(checks), file=out)
    print(f"{text} (after {elapsed:.1f} s)", file=out, flush=True)
    return 0 if ok else 1
