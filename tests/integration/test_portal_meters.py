"""Meter credentials the portal issues, against the real Mosquitto, and device events for hubs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from contract.codec import decode_device_event
from contract.topics import DEVICE_EVENTS_TOPIC
from devkit.helpers import Subscriber, mqtt_connect_result, publish_as, wait_for
from ems.procs import free_port
from portal.app import create_app
from portal.settings import PortalSettings
from tests.conftest import BrokerInfo


@pytest.fixture
def admin_client(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(portal_settings)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": portal_admin[0], "password": portal_admin[1]}
        )
        client.cookies.clear()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield client


def connects(broker: BrokerInfo, username: str, password: str) -> bool:
    result = mqtt_connect_result(broker.host, broker.port, username, password)
    assert not isinstance(result, str), "the broker did not answer"
    return not result.is_failure


def test_meters_use_the_credentials_the_portal_issued(
    broker: BrokerInfo, admin_client: TestClient[Any]
) -> None:
    mine = admin_client.post("/api/v1/devices", json={"name": "mine", "max_hourly_kwh": 1}).json()
    other = admin_client.post("/api/v1/devices", json={"name": "other", "max_hourly_kwh": 1})
    other_id = other.json()["id"]
    user, password = mine["mqtt_username"], mine["mqtt_password"]
    assert user == mine["id"]
    hub = Subscriber(
        broker.host, broker.port, broker.hub_user, broker.hub_password, "ems/v1/meters/+/readings"
    )
    try:
        publish_as(broker, user, password, f"ems/v1/meters/{user}/readings", b"own")
        publish_as(broker, user, password, f"ems/v1/meters/{other_id}/readings", b"foreign")
        publish_as(broker, user, password, f"ems/v1/meters/{user}/readings", b"own-again")
        wait_for(lambda: len(hub.received()) >= 2, what="the meter's own readings")
        assert [(m.topic, m.payload) for m in hub.received()] == [
            (f"ems/v1/meters/{user}/readings", b"own"),
            (f"ems/v1/meters/{user}/readings", b"own-again"),
        ]
    finally:
        hub.close()

    rotated = admin_client.post(f"/api/v1/devices/{user}/credentials")
    assert rotated.status_code == 200, rotated.text
    new_password = rotated.json()["mqtt_password"]
    assert new_password != password
    assert not connects(broker, user, password)
    assert connects(broker, user, new_password)
    assert "mqtt_password" not in admin_client.get(f"/api/v1/devices/{user}").json()

    assert admin_client.delete(f"/api/v1/devices/{user}").status_code == 204
    assert not connects(broker, user, new_password)
    assert admin_client.get(f"/api/v1/devices/{user}").status_code == 404


def test_without_a_broker_device_creation_fails_cleanly(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    nowhere = dataclasses.replace(portal_settings, mqtt_port=free_port(), broker_wait_s=0.3)
    with TestClient(create_app(nowhere)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": portal_admin[0], "password": portal_admin[1]}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        client.cookies.clear()
        response = client.post(
            "/api/v1/devices", json={"name": "m", "max_hourly_kwh": 1}, headers=headers
        )
        assert response.status_code == 503
        assert "broker" in response.json()["detail"]
        assert client.get("/api/v1/devices", headers=headers).json() == []
        audit = client.get("/api/v1/audit", headers=headers).json()["items"]
        assert [e["entity"] for e in audit] == ["user"]  # only `ems admin create`
        assert client.get("/health").json()["status"] == "ok"  # reads still work


def test_hubs_hear_about_every_device_change(
    broker: BrokerInfo, admin_client: TestClient[Any]
) -> None:
    hub = Subscriber(
        broker.host, broker.port, broker.hub_user, broker.hub_password, DEVICE_EVENTS_TOPIC
    )
    try:
        client_id = admin_client.post(
            "/api/v1/users", json={"username": "carol", "password": "carol-password"}
        ).json()["id"]
        device = admin_client.post(
            "/api/v1/devices",
            json={"name": "m", "max_hourly_kwh": 4.5, "rated_power_w": 9000, "interval_s": 60},
        ).json()
        path = f"/api/v1/devices/{device['id']}"
        admin_client.patch(path, json={"max_hourly_kwh": 6.0, "meter_kind": "interval"})
        admin_client.put(f"{path}/owner", json={"owner_id": client_id})
        admin_client.delete(f"/api/v1/users/{client_id}")
        admin_client.delete(path)

        wait_for(lambda: len(hub.received()) >= 5, what="five device events")
        events = [decode_device_event(m.payload) for m in hub.received()]
    finally:
        hub.close()
    assert [(e.action, str(e.device_id)) for e in events] == [
        ("created", device["id"]),
        ("updated", device["id"]),
        ("owner_changed", device["id"]),
        ("owner_changed", device["id"]),
        ("deleted", device["id"]),
    ]
    created, updated, assigned, unassigned, _ = events
    assert (created.max_hourly_kwh, created.rated_power_w, created.interval_s) == (4.5, 9000, 60)
    assert (updated.max_hourly_kwh, updated.meter_kind) == (6.0, "interval")
    assert str(assigned.owner_id) == client_id
    assert unassigned.owner_id is None


def test_the_portal_reconnects_when_the_broker_comes_back(
    broker: BrokerInfo, portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    impatient = dataclasses.replace(portal_settings, broker_wait_s=0.5)
    with TestClient(create_app(impatient)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": portal_admin[0], "password": portal_admin[1]}
        )
        client.cookies.clear()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

        def create() -> int:
            answer = client.post("/api/v1/devices", json={"name": "m", "max_hourly_kwh": 1})
            return int(answer.status_code)

        assert create() == 201
        broker.server.stop()
        assert create() == 503
        broker.server.start()
        wait_for(lambda: create() == 201, timeout=20, what="device creation after reconnecting")
        assert len(client.get("/api/v1/devices").json()) == 2


def test_refused_portal_credentials_are_reported_not_retried_forever(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    wrong = dataclasses.replace(portal_settings, mqtt_password="not-the-password")
    with TestClient(create_app(wrong)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": portal_admin[0], "password": portal_admin[1]}
        )
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        def answer() -> Any:
            return client.post(
                "/api/v1/devices", json={"name": "m", "max_hourly_kwh": 1}, headers=headers
            )

        refused = wait_for(
            lambda: (r := answer()).status_code == 503 and "refused" in r.text and r,
            what="the credential refusal to be reported",
        )
        assert "refused the portal's credentials" in refused.json()["detail"]
        assert client.get("/api/v1/devices", headers=headers).json() == []
