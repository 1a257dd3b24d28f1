"""Alerts API and pages against a real PostgreSQL: who sees and acknowledges which alert."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from contract.enums import ALERT_KINDS
from devkit.helpers import Subscriber, wait_for
from portal.alerts.texts import BROWSER_LABELS
from portal.app import create_app
from portal.auth.tokens import issue_token
from portal.settings import PortalSettings

HOUR = datetime(2025, 11, 25, 13, tzinfo=UTC)  # 14:00 in Paris


@dataclass
class World:
    client: TestClient[Any]
    ids: dict[str, uuid.UUID]
    settings: PortalSettings

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        role = "admin" if who == "root" else "client"
        token = issue_token(self.settings.jwt_secret, self.ids[who], role, 3600).token
        return {"Authorization": f"Bearer {token}"}

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), params=params)

    def ack(self, who: str, alert: str) -> Any:
        path = f"/api/v1/alerts/{self.ids[alert]}/ack"
        return self.client.post(path, headers=self.headers(who))


def _id(conn: psycopg.Connection[Any], sql: str, *params: Any) -> uuid.UUID:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def seed(dsn: str, admin: str) -> dict[str, uuid.UUID]:
    """alice (Paris) and bob each own a kitchen meter; one meter is nobody's. Alerts, oldest
    first: alice's limit alert, bob's, an unowned meter's, alice's retracted one, an offline
    alert on alice's meter raised before she owned it (user_id NULL)."""
    ids: dict[str, uuid.UUID] = {}
    with psycopg.connect(dsn) as conn:
        ids["root"] = _id(conn, "SELECT id FROM users WHERE username = %s", admin)
        for name, tz in (("alice", "Europe/Paris"), ("bob", "UTC")):
            ids[name] = _id(
                conn,
                "INSERT INTO users (username, role, password_hash, time_zone)"
                " VALUES (%s, 'client', 'x', %s) RETURNING id",
                name,
                tz,
            )
            ids[f"dev_{name}"] = _id(
                conn,
                "INSERT INTO devices (name, max_hourly_kwh, owner_id) VALUES (%s, 5, %s)"
                " RETURNING id",
                "Kitchen" if name == "alice" else "Bob's kitchen",
                ids[name],
            )
        ids["dev_free"] = _id(
            conn, "INSERT INTO devices (name, max_hourly_kwh) VALUES ('Spare', 5) RETURNING id"
        )
        rows = [
            ("a_limit", "dev_alice", "alice", "hourly_limit", HOUR, "open"),
            ("b_limit", "dev_bob", "bob", "hourly_limit", HOUR, "open"),
            ("free_limit", "dev_free", None, "hourly_limit", HOUR, "open"),
            (
                "a_retracted",
                "dev_alice",
                "alice",
                "hourly_limit",
                HOUR - timedelta(hours=1),
                "retracted",
            ),
            ("a_offline", "dev_alice", None, "offline", None, "open"),
        ]
        for n, (key, device, owner, kind, hour, status) in enumerate(rows):
            ids[key] = _id(
                conn,
                "INSERT INTO alerts (device_id, user_id, kind, hour, limit_kwh, value_kwh,"
                " status, raised_at) VALUES (%s, %s, %s, %s, 5, 5.4, %s, %s) RETURNING id",
                ids[device],
                ids[owner] if owner else None,
                kind,
                hour,
                status,
                HOUR + timedelta(minutes=30 + n),
            )
    return ids


@pytest.fixture
def world(portal_settings: PortalSettings, portal_admin: tuple[str, str]) -> Iterator[World]:
    ids = seed(portal_settings.database_url, portal_admin[0])
    with TestClient(create_app(portal_settings)) as client:
        yield World(client, ids, portal_settings)


def listed(world: World, who: str, **params: Any) -> list[str]:
    response = world.get(who, "/api/v1/alerts", **params)
    assert response.status_code == 200, response.text
    names = {v: k for k, v in world.ids.items()}
    return [names[uuid.UUID(item["id"])] for item in response.json()["items"]]


def test_anonymous_callers_are_refused(world: World) -> None:
    assert world.get("anonymous", "/api/v1/alerts").status_code == 401
    assert world.get("anonymous", "/api/v1/alerts/unread-count").status_code == 401
    assert world.ack("anonymous", "a_limit").status_code == 401


def test_each_caller_lists_exactly_their_alerts_newest_first(world: World) -> None:
    assert listed(world, "alice") == ["a_offline", "a_retracted", "a_limit"]
    assert listed(world, "bob") == ["b_limit"]
    assert listed(world, "root") == ["a_offline", "a_retracted", "free_limit", "b_limit", "a_limit"]
    item = world.get("alice", "/api/v1/alerts").json()["items"][2]
    # The reader's time zone: 13:00 UTC is 14:00 in Paris.
    assert item["text"] == (
        "Device 'Kitchen' used 5.4 kWh between 14:00 and 15:00 on Tue 25 Nov, "
        "above its limit of 5 kWh"
    )
    assert item["device_name"] == "Kitchen"
    assert world.get("bob", f"/api/v1/alerts/{world.ids['a_limit']}").status_code == 404


def test_a_new_owner_gets_the_devices_unowned_alerts_not_the_previous_owners(
    world: World,
) -> None:
    with psycopg.connect(world.settings.database_url) as conn:
        conn.execute(
            "UPDATE devices SET owner_id = %s WHERE id = %s",
            (world.ids["bob"], world.ids["dev_alice"]),
        )
    # a_offline was raised while nobody was named on it; a_limit and a_retracted were alice's.
    assert listed(world, "bob") == ["a_offline", "b_limit"]
    assert listed(world, "alice") == ["a_retracted", "a_limit"]
    assert world.get("bob", f"/api/v1/alerts/{world.ids['a_limit']}").status_code == 404
    assert world.get("bob", "/api/v1/alerts/unread-count").json()["unread"] == 2


def test_filters_and_pages(world: World) -> None:
    assert listed(world, "alice", status="retracted") == ["a_retracted"]
    assert listed(world, "alice", unread="true") == ["a_offline", "a_limit"]
    assert listed(world, "root", device_id=str(world.ids["dev_free"])) == ["free_limit"]
    assert listed(world, "alice", device_id=str(world.ids["dev_bob"])) == []
    assert listed(world, "root", limit=2, offset=1) == ["a_retracted", "free_limit"]
    page = world.get("root", "/api/v1/alerts", limit=2).json()
    assert (page["total"], page["unread"], page["limit"]) == (5, 4, 2)
    assert world.get("root", "/api/v1/alerts", status="closed").status_code == 400
    assert world.get("root", "/api/v1/alerts", limit=0).status_code == 400


def test_acknowledging_records_who_and_when_and_updates_the_unread_count(world: World) -> None:
    def unread(who: str) -> int:
        return int(world.get(who, "/api/v1/alerts/unread-count").json()["unread"])

    assert (unread("alice"), unread("bob"), unread("root")) == (2, 1, 4)
    assert world.ack("bob", "a_limit").status_code == 404  # not bob's: it does not exist
    response = world.ack("alice", "a_limit")
    assert response.status_code == 200, response.text
    acked = response.json()
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == str(world.ids["alice"])
    assert acked["acknowledged_at"] is not None
    assert (unread("alice"), unread("root")) == (1, 3)
    again = world.ack("alice", "a_limit").json()  # twice: the first acknowledgement stands
    assert again["acknowledged_at"] == acked["acknowledged_at"]
    assert listed(world, "alice", status="acknowledged") == ["a_limit"]

    by_admin = world.ack("root", "b_limit").json()
    assert by_admin["acknowledged_by"] == str(world.ids["root"])
    assert world.ack("root", "free_limit").status_code == 200
    assert unread("bob") == 0

    retracted = world.ack("alice", "a_retracted")
    assert retracted.status_code == 409
    assert "retracted" in retracted.json()["detail"]
    assert world.ack("root", "a_retracted").status_code == 409


def test_cookie_sessions_need_the_csrf_token_and_the_pages_work(world: World) -> None:
    login = world.client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "root-password-1"}
    )
    assert login.status_code == 200
    csrf = login.json()["csrf_token"]
    path = f"/api/v1/alerts/{world.ids['a_limit']}/ack"
    assert world.client.post(path).status_code == 403
    assert world.client.post(path, headers={"X-CSRF-Token": csrf}).status_code == 200

    page = world.client.get("/admin/alerts")
    assert page.status_code == 200
    assert "Device &#39;Spare&#39; used 5.4 kWh" in page.text
    form = re.search(rf'action="/alerts/{world.ids["b_limit"]}/ack"', page.text)
    assert form is not None
    done = world.client.post(
        f"/alerts/{world.ids['b_limit']}/ack",
        data={"csrf_token": csrf, "next": "/admin/alerts"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/alerts?done=alert-acknowledged"
    history = world.client.get("/alerts?show=acknowledged")
    assert history.status_code == 200
    assert history.text.count('class="alert-row') == 2


def test_acknowledging_again_publishes_no_second_event_and_answers_the_same(
    world: World,
) -> None:
    settings = world.settings
    events = Subscriber(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_username,
        settings.mqtt_password,
        "ems/v1/events/alerts/#",
    )
    try:
        first = world.ack("alice", "a_limit")
        again = world.ack("alice", "a_limit")  # a second tab, a double click, a retry
        by_admin = world.ack("root", "a_limit")
        assert first.status_code == again.status_code == by_admin.status_code == 200
        unchanging = ("status", "acknowledged_at", "acknowledged_by")
        for later in (again, by_admin):
            assert {k: later.json()[k] for k in unchanging} == {
                k: first.json()[k] for k in unchanging
            }
        assert world.ack("bob", "b_limit").status_code == 200  # a marker after them

        def alert_ids() -> list[str]:
            return [json.loads(m.payload)["id"] for m in events.received()]

        wait_for(lambda: str(world.ids["b_limit"]) in alert_ids(), timeout=10, what="bob's event")
        assert alert_ids() == [str(world.ids["a_limit"]), str(world.ids["b_limit"])]
    finally:
        events.close()


def test_signed_in_pages_carry_the_servers_labels_for_the_browser(world: World) -> None:
    """alerts.js and chat.js name alert kinds from this JSON data block, not their own lists."""
    login = world.client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "root-password-1"}
    )
    assert login.status_code == 200
    for path in ("/admin/alerts", "/admin/chat"):
        page = world.client.get(path)
        assert page.status_code == 200
        block = re.search(
            r'<script id="ems-labels" type="application/json">(.*?)</script>', page.text
        )
        assert block is not None, path
        assert json.loads(block.group(1)) == BROWSER_LABELS
    assert set(BROWSER_LABELS["alert_kind"]) == set(ALERT_KINDS)
