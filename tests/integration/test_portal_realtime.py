"""The portal's WebSocket against a real portal process, PostgreSQL and Mosquitto: each user
gets their own alerts, live readings and device status, administrators get everything."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from contract.codec import encode_status
from contract.topics import alerts_topic, live_topic, status_topic
from devkit.helpers import publish_as, wait_for
from devkit.hubkit import create_gateway
from devkit.live_portal import LivePortal
from portal.auth.tokens import issue_token
from portal.settings import PortalSettings
from tests.conftest import BrokerInfo

NIL = uuid.UUID(int=0)
PROJECTIONS = {"hourly_limit": (5.4, None), "early_warning": (2.5, 6.1)}  # value, projected


@dataclass
class Stack:
    portal: LivePortal
    broker: BrokerInfo
    settings: PortalSettings
    ids: dict[str, uuid.UUID]

    def token(self, who: str) -> str:
        role = "admin" if who == "root" else "client"
        return issue_token(self.settings.jwt_secret, self.ids[who], role, 3600).token

    def socket(self, who: str) -> ClientConnection:
        ws = connect(
            self.portal.url.replace("http", "ws") + "/ws",
            additional_headers={"Authorization": f"Bearer {self.token(who)}"},
            proxy=None,
            legacy=True,
        )
        ready = next_message(ws, "ready")
        assert ready["user_id"] == str(self.ids[who])
        return ws

    def hub_publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        publish_as(self.broker, self.broker.hub_user, self.broker.hub_password, topic, payload, qos)


def next_message(ws: ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next message of ``kind``; keepalives and other kinds in between are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {kind!r} message within {timeout} s")
        try:
            message = json.loads(ws.recv(timeout=remaining))
        except TimeoutError:
            continue
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]


def events_subscribed(portal: LivePortal) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"{portal.url}/health", timeout=2) as response:  # noqa: S310
        return bool(json.load(response).get("events") == "subscribed")


@pytest.fixture
def stack(
    portal_settings: PortalSettings,
    broker: BrokerInfo,
    portal_admin: tuple[str, str],
    tmp_path: Path,
) -> Iterator[Stack]:
    ids: dict[str, uuid.UUID] = {}
    with psycopg.connect(portal_settings.database_url) as conn:
        ids["root"] = conn.execute(
            "SELECT id FROM users WHERE username = %s", (portal_admin[0],)
        ).fetchone()[0]  # type: ignore[index]
        for name in ("alice", "bob"):
            ids[name] = conn.execute(
                "INSERT INTO users (username, role, password_hash, time_zone)"
                " VALUES (%s, 'client', 'x', 'Europe/Paris') RETURNING id",
                (name,),
            ).fetchone()[0]  # type: ignore[index]
            ids[f"dev_{name}"] = conn.execute(
                "INSERT INTO devices (name, max_hourly_kwh, owner_id) VALUES (%s, 5, %s)"
                " RETURNING id",
                (f"{name}'s kitchen", ids[name]),
            ).fetchone()[0]  # type: ignore[index]
        ids["dev_free"] = conn.execute(
            "INSERT INTO devices (name, max_hourly_kwh) VALUES ('spare', 5) RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
    with LivePortal(portal_settings, tmp_path / "portal.log") as portal:
        wait_for(lambda: events_subscribed(portal), what="the portal's event subscription")
        yield Stack(portal, broker, portal_settings, ids)


def raise_alert(
    stack: Stack, device: str, owner: uuid.UUID | None, kind: str = "hourly_limit"
) -> dict[str, Any]:
    """An hourly-limit alert row as the hub writes it, and its event as the hub publishes it."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (device_id, user_id, kind, hour, limit_kwh, value_kwh,"
            " projected_kwh) VALUES (%s, %s, %s, %s, 5, %s, %s)"
            " RETURNING id, raised_at, updated_at",
            (stack.ids[device], owner, kind, hour, *PROJECTIONS[kind]),
        ).fetchone()
    assert row is not None
    event = {
        "event": "raised",
        "id": str(row[0]),
        "device_id": str(stack.ids[device]),
        "user_id": None if owner is None else str(owner),
        "kind": kind,
        "hour": hour.isoformat(),
        "limit_kwh": 5.0,
        "value_kwh": PROJECTIONS[kind][0],
        "projected_kwh": PROJECTIONS[kind][1],
        "final_kwh": None,
        "late": False,
        "status": "open",
        "raised_at": row[1].isoformat(),
        "updated_at": row[2].isoformat(),
    }
    stack.hub_publish(alerts_topic(owner or NIL), json.dumps(event).encode())
    return event


def live(stack: Stack, device: str, owner: uuid.UUID | None) -> None:
    event = {
        "device_id": str(stack.ids[device]),
        "ts": datetime.now(UTC).isoformat(),
        "energy_kwh": 12.5,
        "power_w": 800.0,
        "hour": datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat(),
        "hour_kwh": 0.4,
        "quality": "measured",
        "max_hourly_kwh": 5.0,
        "owner_id": None if owner is None else str(owner),
    }
    stack.hub_publish(live_topic(stack.ids[device]), json.dumps(event).encode(), qos=0)


def test_each_client_gets_only_their_own_alerts_and_the_admin_gets_all(stack: Stack) -> None:
    alice, bob, admin = stack.socket("alice"), stack.socket("bob"), stack.socket("root")
    with alice, bob, admin:
        sent_a = raise_alert(stack, "dev_alice", stack.ids["alice"])
        got = next_message(alice, "alert")
        assert got["event"] == "raised"
        assert got["alert"]["id"] == sent_a["id"]
        assert got["alert"]["device_name"] == "alice's kitchen"
        assert "used 5.4 kWh between" in got["alert"]["text"]
        assert "above its limit of 5 kWh" in got["alert"]["text"]
        assert got["unread"] == 1
        assert next_message(admin, "alert")["alert"]["id"] == sent_a["id"]

        # Events arrive in publication order: bob's first alert must be his own.
        sent_b = raise_alert(stack, "dev_bob", stack.ids["bob"])
        assert next_message(bob, "alert")["alert"]["id"] == sent_b["id"]
        assert next_message(admin, "alert")["alert"]["id"] == sent_b["id"]

        # A device with no owner: the nil-UUID topic reaches administrators only.
        sent_free = raise_alert(stack, "dev_free", None)
        got = next_message(admin, "alert")
        assert got["alert"]["id"] == sent_free["id"]
        assert got["unread"] == 3  # the fleet's open alerts
        marker = raise_alert(stack, "dev_bob", stack.ids["bob"], kind="early_warning")
        got = next_message(bob, "alert")
        assert got["alert"]["id"] == marker["id"]  # never alice's, never the spare meter's
        assert got["unread"] == 2
        marker = raise_alert(stack, "dev_alice", stack.ids["alice"], kind="early_warning")
        got = next_message(alice, "alert")
        assert got["alert"]["id"] == marker["id"]  # bob's and the spare meter's never came
        assert got["unread"] == 2
        assert "is on course to use" in got["alert"]["text"]


def test_live_readings_and_status_reach_only_the_owner_and_administrators(
    stack: Stack,
) -> None:
    alice, bob, admin = stack.socket("alice"), stack.socket("bob"), stack.socket("root")
    with alice, bob, admin:
        live(stack, "dev_alice", stack.ids["alice"])
        got = next_message(alice, "live")
        assert got["device_id"] == str(stack.ids["dev_alice"])
        assert got["hour_kwh"] == 0.4
        assert next_message(admin, "live")["device_id"] == str(stack.ids["dev_alice"])
        live(stack, "dev_bob", stack.ids["bob"])
        assert next_message(bob, "live")["device_id"] == str(stack.ids["dev_bob"])

        # Status messages carry no owner: the portal looks it up.
        gateway = create_gateway(stack.broker)
        publish_as(
            stack.broker,
            *gateway,
            status_topic(stack.ids["dev_bob"]),
            encode_status("offline", datetime.now(UTC)),
        )
        got = next_message(bob, "device_status")
        assert (got["device_id"], got["state"]) == (str(stack.ids["dev_bob"]), "offline")
        assert next_message(admin, "device_status")["device_id"] == str(stack.ids["dev_bob"])
        publish_as(
            stack.broker,
            *gateway,
            status_topic(stack.ids["dev_alice"]),
            encode_status("online", datetime.now(UTC)),
        )
        got = next_message(alice, "device_status")
        assert (got["device_id"], got["state"]) == (str(stack.ids["dev_alice"]), "online")


def close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        next_message(ws, "ready")
    return closed.value.rcvd.code if closed.value.rcvd else None


def test_sockets_need_a_valid_session_from_the_portal_itself(stack: Stack) -> None:
    url = stack.portal.url.replace("http", "ws") + "/ws"
    with connect(url, proxy=None, legacy=True) as anonymous:
        assert close_code(anonymous) == 4401
    with connect(url + "?token=forged", proxy=None, legacy=True) as forged:
        assert close_code(forged) == 4401
    # A token in the URL is not accepted, even a valid one: URLs are logged by proxies and kept
    # in histories. API clients send the Authorization header; browsers, the session cookie.
    with connect(f"{url}?token={stack.token('bob')}", proxy=None, legacy=True) as by_query:
        assert close_code(by_query) == 4401
    bearer = {"Authorization": f"Bearer {stack.token('bob')}"}
    with connect(url, proxy=None, legacy=True, additional_headers=bearer) as by_header:
        assert next_message(by_header, "ready")["role"] == "client"
    cookie = {"Cookie": f"ems_session={stack.token('alice')}"}
    with connect(url, proxy=None, legacy=True, additional_headers=cookie) as same_origin:
        assert next_message(same_origin, "ready")["user_id"] == str(stack.ids["alice"])
    # Another site's page cannot use the visitor's cookie (cross-site WebSocket hijacking).
    evil = {**cookie, "Origin": "http://evil.example"}
    with connect(url, proxy=None, legacy=True, additional_headers=evil) as cross_site:
        assert close_code(cross_site) == 4403


def test_browser_messages_are_dispatched_by_type(stack: Stack) -> None:
    with stack.socket("alice") as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert next_message(ws, "pong") == {"type": "pong"}
        ws.send(json.dumps({"type": "no.such.thing"}))
        assert "unknown message type" in next_message(ws, "error")["detail"]
        ws.send("not json")
        assert "JSON object" in next_message(ws, "error")["detail"]
        ws.send(json.dumps({"type": "ping"}))
        assert next_message(ws, "pong") == {"type": "pong"}  # still open


def test_malformed_live_events_are_ignored_with_a_warning(stack: Stack, tmp_path: Path) -> None:
    """A live event that is not the contract's LiveEvent never reaches a browser (the portal
    used to forward any JSON object as it was); each is logged, and the next good one
    still arrives."""
    device = stack.ids["dev_alice"]
    good = {
        "device_id": str(device),
        "ts": "2026-01-01T10:20:00Z",
        "energy_kwh": 77.0,
        "power_w": None,
        "hour": "2026-01-01T10:00:00Z",
        "hour_kwh": 1.5,
        "quality": "measured",
        "max_hourly_kwh": 5.0,
        "owner_id": str(stack.ids["alice"]),
    }
    bad = [
        b"not json",
        b"[1, 2]",
        json.dumps({"device_id": str(device), "owner_id": str(stack.ids["alice"])}).encode(),
        json.dumps({**good, "energy_kwh": "lots"}).encode(),
    ]
    with stack.socket("alice") as alice:
        for payload in bad:
            stack.hub_publish(live_topic(device), payload, qos=1)
        stack.hub_publish(live_topic(device), json.dumps(good).encode(), qos=1)
        got = next_message(alice, "live")
        assert (got["energy_kwh"], got["hour_kwh"]) == (77.0, 1.5)  # the good one, first
        assert got["ts"] == "2026-01-01T10:20:00Z"
    log = tmp_path / "portal.log"
    wait_for(
        lambda: log.read_text().count("ignoring a malformed live event") >= len(bad),
        what="a warning per malformed live event",
    )
