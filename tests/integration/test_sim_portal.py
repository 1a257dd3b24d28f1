"""`ems-sim provision` against the real portal, then `ems-sim run` with what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contract.topics import parse_meter_topic
from devkit.helpers import Subscriber, wait_for
from ems.procs import free_port
from portal.settings import PortalSettings
from tests.conftest import BrokerInfo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal_url(portal_settings: PortalSettings, tmp_path: Path) -> Iterator[str]:
    """The portal as deployed: `python -m portal` serving HTTP on a free port."""
    port = free_port()
    s = portal_settings
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": s.database_url,
        "PORTAL_JWT_SECRET": s.jwt_secret,
        "PORTAL_MQTT_USERNAME": s.mqtt_username,
        "PORTAL_MQTT_PASSWORD": s.mqtt_password,
        "PORTAL_MQTT_HOST": s.mqtt_host,
        "PORTAL_MQTT_PORT": str(s.mqtt_port),
        "PORTAL_HTTP_PORT": str(port),
    }
    log = (tmp_path / "portal.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, (tmp_path / "portal.log").read_text()[-2000:]
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 30, "the portal to answer /health")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_provisioned_meters_belong_to_their_client_and_run_from_the_written_file(
    broker: BrokerInfo, portal_url: str, portal_admin: tuple[str, str], tmp_path: Path
) -> None:
    admin_user, admin_password = portal_admin
    with httpx.Client(base_url=portal_url, timeout=10) as api:
        token = api.post(
            "/api/v1/auth/login", json={"username": admin_user, "password": admin_password}
        ).json()["token"]
        api.cookies.clear()
        api.headers["Authorization"] = f"Bearer {token}"
        alice = api.post(
            "/api/v1/users",
            json={"username": "alice", "password": "alice-password-1", "role": "client"},
        )
        assert alice.status_code == 201, alice.text
        alice_id = alice.json()["id"]

        fleet = tmp_path / "fleet.toml"
        provision = subprocess.run(
            [
                *(sys.executable, "-m", "device_sim", "provision", "-n", "3", "--owner", "alice"),
                *("--portal", portal_url, "--admin-user", admin_user, "-o", str(fleet)),
                *("--host", broker.host, "--port", str(broker.port), "--interval", "600"),
            ],
            cwd=ROOT,
            env={**os.environ, "EMS_SIM_ADMIN_PASSWORD": admin_password},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert provision.returncode == 0, provision.stdout + provision.stderr
        written = tomllib.loads(fleet.read_text())
        assert written["broker"] == {"host": broker.host, "port": broker.port}
        device_ids = {uuid.UUID(m["device_id"]) for m in written["meters"]}
        owned = api.get("/api/v1/devices", params={"owner_id": alice_id}).json()
        assert {uuid.UUID(d["id"]) for d in owned} == device_ids

    hub = Subscriber(
        broker.host, broker.port, broker.hub_user, broker.hub_password, "ems/v1/meters/+/readings"
    )
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "device_sim",
            "run",
            "-c",
            str(fleet),
            "--speed",
            "600",
            "--no-state",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def publishing() -> set[uuid.UUID]:
            return {parsed[0] for m in hub.received() if (parsed := parse_meter_topic(m.topic))}

        wait_for(lambda: publishing() == device_ids, 30, "readings from every provisioned meter")
    finally:
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=20)
        hub.close()
    assert run.returncode == 0, output
