"""GET /metrics counts every request by route template, so its label set stays bounded."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from portal.app import create_app
from portal.settings import PortalSettings


def _requests(client: TestClient[Any]) -> dict[tuple[str, str, str], float]:
    text = client.get("/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "portal_requests")
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in family.samples
        if s.name == "portal_requests_total"
    }


def test_every_request_is_counted_by_route_template_not_raw_path(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    devices = [uuid.uuid4() for _ in range(3)]
    with TestClient(create_app(portal_settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/login").status_code == 200
        login = {"username": portal_admin[0], "password": portal_admin[1]}
        token = client.post("/api/v1/auth/login", json=login).json()["access_token"]
        client.cookies.clear()
        for device in devices:
            response = client.get(
                f"/api/v1/devices/{device}", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 404
        for n in range(3):
            assert client.get(f"/no/such/page/{n}").status_code == 404
        assert client.request("BREW", "/health").status_code == 405
        counted = _requests(client)

    assert counted[("GET", "/health", "200")] == 1
    assert counted[("GET", "/login", "200")] == 1
    assert counted[("POST", "/api/v1/auth/login", "200")] == 1
    device_routes = {route for _, route, _ in counted if route.startswith("/api/v1/devices/")}
    assert device_routes == {"/api/v1/devices/{device_id}"}
    assert counted[("GET", "/api/v1/devices/{device_id}", "404")] == 3
    assert counted[("GET", "unmatched", "404")] == 3
    assert counted[("OTHER", "unmatched", "405")] == 1  # an unknown method is refused in routing
    labels = {value for key in counted for value in key}
    assert not any(
        str(device) in value or "/no/such" in value for device in devices for value in labels
    )
