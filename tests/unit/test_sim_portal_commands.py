"""`ems-sim provision` and `ems-sim check` against a stand-in for the portal's REST API.

The stand-in follows the contract of ARCHITECTURE.md section 6 (paths, bodies, Bearer auth);
the end-to-end versions against the real portal are in tests/integration.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_sim.check import CheckRequest, run_check
from device_sim.check_series import expected_hourly
from device_sim.config import ConfigError, load_file
from device_sim.plan import BrokerPlan
from device_sim.portal_api import PortalClient, PortalError
from device_sim.provision import ProvisionRequest, check_output, provision


class FakePortal:
    def __init__(self, *, fail_after: int | None = None) -> None:
        self.devices: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}
        self.deleted: list[str] = []
        self.hourly: dict[str, list[dict[str, Any]]] = {}
        self.users = [{"id": str(uuid.uuid4()), "username": "alice"}]
        self.fail_after = fail_after

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/api/v1/auth/login":
            body = json.loads(request.content)
            if (body["username"], body["password"]) != ("admin", "secret"):
                return httpx.Response(401, json={"detail": "wrong user name or password"})
            return httpx.Response(200, json={"token": "tok"}, headers={"set-cookie": "s=1"})
        if request.headers.get("authorization") != "Bearer tok" or "cookie" in request.headers:
            return httpx.Response(401, json={"detail": "not signed in"})
        if path == "/api/v1/devices" and method == "POST":
            if self.fail_after is not None and len(self.devices) >= self.fail_after:
                return httpx.Response(503, json={"detail": "the broker is not reachable"})
            device_id = str(uuid.uuid4())
            self.devices[device_id] = json.loads(request.content)
            body = {"id": device_id, "mqtt_username": device_id, "mqtt_password": f"pw-{device_id}"}
            return httpx.Response(201, json=body)
        if path == "/api/v1/users":
            return httpx.Response(200, json=self.users)
        parts = path.split("/")
        if path.endswith("/owner") and method == "PUT":
            self.owners[parts[4]] = json.loads(request.content)["owner_id"]
            return httpx.Response(200, json={})
        if path.endswith("/consumption/hourly"):
            # As the portal answers: every hour of the (here UTC) day, unstored ones "missing".
            day = date.fromisoformat(request.url.params["date"])
            stored = {r["hour"]: r for r in self.hourly.get(parts[4], [])}
            hours = [datetime.combine(day, time(k), UTC).isoformat() for k in range(24)]
            rows = [
                stored.get(h, {"hour": h, "energy_kwh": None, "quality": "missing"}) for h in hours
            ]
            return httpx.Response(200, json={"date": day.isoformat(), "hours": rows})
        if method == "DELETE":
            self.deleted.append(parts[4])
            return httpx.Response(204)
        return httpx.Response(404, json={"detail": "no such route"})

    def client(self) -> PortalClient:
        return PortalClient("http://portal.test", transport=httpx.MockTransport(self.handle))


async def provision_with(portal: FakePortal, req: ProvisionRequest) -> str:
    out = io.StringIO()
    async with portal.client() as api:
        await api.login("admin", "secret")
        await provision(api, req, out)
    return out.getvalue()


def test_provision_creates_devices_assigns_them_and_writes_a_fleet_file(tmp_path: Path) -> None:
    portal = FakePortal()
    req = ProvisionRequest(count=3, out=tmp_path / "fleet.toml", owner="alice", interval_s=60)
    output = asyncio.run(provision_with(portal, req))
    meters = load_file(tmp_path / "fleet.toml").meters
    assert sorted(str(m.device_id) for m in meters) == sorted(portal.devices)
    assert all(m.password == f"pw-{m.device_id}" for m in meters)
    assert [m.name for m in meters] == ["sim-00001", "sim-00002", "sim-00003"]
    assert set(portal.owners.values()) == {portal.users[0]["id"]}
    assert {d["interval_s"] for d in portal.devices.values()} == {60}
    assert "3 devices -> " in output


def test_provision_keeps_what_it_created_when_the_portal_fails_midway(tmp_path: Path) -> None:
    portal = FakePortal(fail_after=2)
    req = ProvisionRequest(count=5, out=tmp_path / "fleet.toml", concurrency=1)
    with pytest.raises(PortalError, match="503: the broker is not reachable - 2 of 5 devices"):
        asyncio.run(provision_with(portal, req))
    assert len(load_file(tmp_path / "fleet.toml").meters) == 2


def test_provision_never_overwrites_credentials_without_force(tmp_path: Path) -> None:
    (tmp_path / "fleet.toml").write_text("# precious\n")
    with pytest.raises(ConfigError, match="may hold credentials shown only once"):
        check_output(ProvisionRequest(count=1, out=tmp_path / "fleet.toml"))
    check_output(ProvisionRequest(count=1, out=tmp_path / "fleet.toml", force=True))


def test_a_wrong_admin_password_and_an_unknown_owner_say_what_to_fix(tmp_path: Path) -> None:
    async def login_wrong() -> None:
        async with FakePortal().client() as api:
            await api.login("admin", "nope")

    with pytest.raises(
        PortalError, match=re.escape("login as 'admin' failed (401) - check --admin-user")
    ):
        asyncio.run(login_wrong())
    req = ProvisionRequest(count=1, out=tmp_path / "f.toml", owner="bob")
    with pytest.raises(PortalError, match="no user named 'bob'"):
        asyncio.run(provision_with(FakePortal(), req))


def test_an_unreachable_portal_is_reported_as_such() -> None:
    async def go() -> None:
        async with PortalClient("http://127.0.0.1:9") as api:
            await api.login("admin", "secret")

    with pytest.raises(PortalError, match="refused the connection - is it running"):
        asyncio.run(go())


def check_with(
    portal: FakePortal, error_kwh: float = 0.0, *, timeout: float = 5.0
) -> tuple[int, str]:
    """Run a check whose 'hub' stores what was published (plus ``error_kwh`` in one hour)."""

    async def hub(_b: BrokerPlan, device_id: uuid.UUID, _pw: str, series: Any) -> None:
        hours = expected_hourly(series)
        first = min(hours)
        portal.hourly[str(device_id)] = [
            {
                "hour": h.isoformat(),
                "energy_kwh": v + (error_kwh if h == first else 0.0),
                "quality": "measured",
            }
            for h, v in hours.items()
        ]

    req = CheckRequest(
        "http://portal.test", "admin", "secret", BrokerPlan(), timeout_s=timeout, poll_s=0.01
    )
    out = io.StringIO()
    transport = httpx.MockTransport(portal.handle)
    code = asyncio.run(run_check(req, out, publish=hub, transport=transport))
    return code, out.getvalue()


def test_check_passes_when_the_stored_hours_match_and_removes_its_device() -> None:
    portal = FakePortal()
    code, output = check_with(portal)
    assert code == 0
    assert "PASS: all 3 hours stored as sent" in output
    assert portal.deleted == list(portal.devices)


def test_check_fails_with_a_report_when_an_hour_differs() -> None:
    code, output = check_with(FakePortal(), error_kwh=0.25, timeout=0.2)
    assert code == 1
    assert "FAIL: 1 different of 3 hours" in output
    assert "DIFFERENT" in output


def test_check_fails_when_nothing_arrives_in_time() -> None:
    portal = FakePortal()

    async def lost(*_args: Any) -> None:
        return None

    req = CheckRequest(
        "http://portal.test", "admin", "secret", BrokerPlan(), timeout_s=0.1, poll_s=0.01
    )
    out = io.StringIO()
    code = asyncio.run(
        run_check(req, out, publish=lost, transport=httpx.MockTransport(portal.handle))
    )
    assert code == 1 and "FAIL: 3 missing of 3 hours" in out.getvalue()
