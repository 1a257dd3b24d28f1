"""Portal API against a real PostgreSQL and a real Mosquitto: who may do what, and what they see."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.auth.passwords import hash_password
from portal.auth.tokens import issue_token
from portal.settings import PortalSettings

Headers = dict[str, str]


def login(client: TestClient[Any], username: str, password: str) -> Headers:
    """Sign in as an API client would; the browser cookies are dropped, the Bearer token kept."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@functools.cache
def password_hash(password: str) -> str:
    return hash_password(password)


@dataclass
class World:
    """An administrator, two clients (alice, bob) and three devices: alice's, bob's, nobody's."""

    client: TestClient[Any]
    callers: dict[str, Headers]
    ids: dict[str, str]

    def call(self, caller: str, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"headers": self.callers[caller]}
        if body is not None:
            kwargs["json"] = _fill(body, {**self.ids, "caller": caller})
        return self.client.request(method, path.format(**self.ids), **kwargs)


def _fill(body: Any, ids: dict[str, str]) -> Any:
    if isinstance(body, dict):
        return {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    return body


def seed(database_url: str) -> dict[str, str]:
    """The world's rows, written directly (the API that writes them is tested on its own)."""
    ids: dict[str, str] = {}
    with psycopg.connect(database_url) as conn:
        for name in ("alice", "bob"):
            row = conn.execute(
                "INSERT INTO users (username, role, password_hash) VALUES (%s, 'client', %s)"
                " RETURNING id",
                (name, password_hash(f"{name}-password")),
            ).fetchone()
            assert row is not None
            ids[name] = str(row[0])
        for key, name, owner in (
            ("dev_a", "alice's meter", ids["alice"]),
            ("dev_b", "bob's meter", ids["bob"]),
            ("dev_free", "spare meter", None),
        ):
            row = conn.execute(
                "INSERT INTO devices (name, max_hourly_kwh, owner_id) VALUES (%s, 2.5, %s)"
                " RETURNING id",
                (name, owner),
            ).fetchone()
            assert row is not None
            ids[key] = str(row[0])
    return ids


def bearer(settings: PortalSettings, user_id: str, role: str) -> Headers:
    """The token a login would return (logins themselves are tested below)."""
    issued = issue_token(settings.jwt_secret, uuid.UUID(user_id), role, 3600)
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def world(portal_settings: PortalSettings, portal_admin: tuple[str, str]) -> Iterator[World]:
    ids = seed(portal_settings.database_url)
    with psycopg.connect(portal_settings.database_url) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = %s", (portal_admin[0],))
        ids["root"] = str(row.fetchone()[0])  # type: ignore[index]
    ids["nobody"] = str(uuid.uuid4())
    with TestClient(create_app(portal_settings)) as client:
        callers = {
            "anonymous": {},
            "alice": bearer(portal_settings, ids["alice"], "client"),
            "bob": bearer(portal_settings, ids["bob"], "client"),
            "admin": bearer(portal_settings, ids["root"], "admin"),
        }
        yield World(client, callers, ids)


CALLERS = ("anonymous", "alice", "bob", "admin")  # the administrator last: their writes succeed
NEW_USER = {"username": "new-{caller}", "password": "a-good-password"}
NEW_DEVICE = {"name": "new meter", "max_hourly_kwh": 1.0}
ASSIGN_BOB = {"owner_id": "{bob}"}

# method, path, body → expected status for (anonymous, alice, bob, admin)
ACCESS: list[tuple[str, str, Any, tuple[int, int, int, int]]] = [
    ("GET", "/api/v1/me", None, (401, 200, 200, 200)),
    ("POST", "/api/v1/auth/logout", None, (401, 204, 204, 204)),
    ("POST", "/api/v1/auth/register", NEW_USER, (202, 202, 202, 202)),
    ("GET", "/api/v1/users", None, (401, 403, 403, 200)),
    ("POST", "/api/v1/users", NEW_USER, (401, 403, 403, 201)),
    ("GET", "/api/v1/users/{alice}", None, (401, 403, 403, 200)),
    ("GET", "/api/v1/users/{nobody}", None, (401, 403, 403, 404)),
    ("PATCH", "/api/v1/users/{alice}", {"name": "A"}, (401, 403, 403, 200)),
    ("PATCH", "/api/v1/users/{nobody}", {"name": "A"}, (401, 403, 403, 404)),
    ("DELETE", "/api/v1/users/{bob}", None, (401, 403, 403, 204)),
    ("DELETE", "/api/v1/users/{nobody}", None, (401, 403, 403, 404)),
    ("GET", "/api/v1/devices", None, (401, 200, 200, 200)),
    ("POST", "/api/v1/devices", NEW_DEVICE, (401, 403, 403, 201)),
    ("GET", "/api/v1/devices/{dev_a}", None, (401, 200, 404, 200)),
    ("GET", "/api/v1/devices/{dev_free}", None, (401, 404, 404, 200)),
    ("GET", "/api/v1/devices/{nobody}", None, (401, 404, 404, 404)),
    ("PATCH", "/api/v1/devices/{dev_a}", {"name": "x"}, (401, 403, 403, 200)),
    ("PATCH", "/api/v1/devices/{nobody}", {"name": "x"}, (401, 403, 403, 404)),
    ("DELETE", "/api/v1/devices/{dev_a}", None, (401, 403, 403, 204)),
    ("DELETE", "/api/v1/devices/{nobody}", None, (401, 403, 403, 404)),
    ("PUT", "/api/v1/devices/{dev_a}/owner", ASSIGN_BOB, (401, 403, 403, 200)),
    ("PUT", "/api/v1/devices/{nobody}/owner", ASSIGN_BOB, (401, 403, 403, 404)),
    ("POST", "/api/v1/devices/{dev_a}/credentials", None, (401, 403, 403, 200)),
    ("POST", "/api/v1/devices/{nobody}/credentials", None, (401, 403, 403, 404)),
    ("GET", "/api/v1/audit", None, (401, 403, 403, 200)),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), ACCESS, ids=[f"{m} {p}" for m, p, _, _ in ACCESS]
)
def test_every_endpoint_answers_each_kind_of_caller(
    world: World, method: str, path: str, body: Any, expected: tuple[int, ...]
) -> None:
    answers = {}
    for caller in CALLERS:
        response = world.call(caller, method, path, body)
        answers[caller] = response.status_code
        if response.status_code >= 400:
            assert response.json()["detail"], response.text
    assert answers == dict(zip(CALLERS, expected, strict=True))


def test_a_client_lists_exactly_their_own_devices(world: World) -> None:
    def names(caller: str) -> list[str]:
        return sorted(d["name"] for d in world.call(caller, "GET", "/api/v1/devices").json())

    assert names("alice") == ["alice's meter"]
    assert names("bob") == ["bob's meter"]
    assert names("admin") == ["alice's meter", "bob's meter", "spare meter"]
    me = world.call("alice", "GET", "/api/v1/me").json()
    assert me == {
        "id": world.ids["alice"],
        "username": "alice",
        "name": "",
        "email": None,
        "role": "client",
        "time_zone": "UTC",
    }


def test_deleting_a_client_keeps_their_devices_unassigned(world: World) -> None:
    assert world.call("admin", "DELETE", "/api/v1/users/{alice}").status_code == 204
    device = world.call("admin", "GET", "/api/v1/devices/{dev_a}").json()
    assert device["name"] == "alice's meter"
    assert device["owner_id"] is None
    assert world.call("alice", "GET", "/api/v1/me").status_code == 401


def test_an_admin_cannot_delete_or_demote_themselves(world: World) -> None:
    delete = world.call("admin", "DELETE", "/api/v1/users/{root}")
    assert delete.status_code == 403
    assert "your own account" in delete.json()["detail"]
    demote = world.call("admin", "PATCH", "/api/v1/users/{root}", {"role": "client"})
    assert demote.status_code == 403


def test_owners_must_be_existing_clients(world: World) -> None:
    to_admin = world.call(
        "admin", "PUT", "/api/v1/devices/{dev_free}/owner", {"owner_id": world.ids["root"]}
    )
    assert to_admin.status_code == 422  # well-formed, but not a client
    assert "administrator" in to_admin.json()["detail"]
    to_nobody = world.call(
        "admin", "PUT", "/api/v1/devices/{dev_free}/owner", {"owner_id": world.ids["nobody"]}
    )
    assert to_nobody.status_code == 422
    assert "does not exist" in to_nobody.json()["detail"]
    promote = world.call("admin", "PATCH", "/api/v1/users/{alice}", {"role": "admin"})
    assert promote.status_code == 409
    assert "unassign" in promote.json()["detail"]
    unassign = world.call("admin", "PUT", "/api/v1/devices/{dev_a}/owner", {"owner_id": None})
    assert unassign.status_code == 200
    assert unassign.json()["owner_id"] is None
    assert world.call("alice", "GET", "/api/v1/devices").json() == []


def test_administrators_manage_users_and_reset_passwords(world: World) -> None:
    created = world.call(
        "admin",
        "POST",
        "/api/v1/users",
        {
            "username": "dora",
            "password": "dora-password",
            "name": "Dora Explorer",
            "email": "dora@example.com",
            "time_zone": "Europe/Paris",
        },
    )
    assert created.status_code == 201, created.text
    dora = created.json()
    assert {k: dora[k] for k in ("username", "name", "email", "role", "time_zone")} == {
        "username": "dora",
        "name": "Dora Explorer",
        "email": "dora@example.com",
        "role": "client",
        "time_zone": "Europe/Paris",
    }
    assert "password" not in dora and "password_hash" not in dora
    taken = world.call("admin", "POST", "/api/v1/users", {"username": "DORA", "password": "x" * 8})
    assert taken.status_code == 409
    assert "already taken" in taken.json()["detail"]

    changed = world.call(
        "admin",
        "PATCH",
        f"/api/v1/users/{dora['id']}",
        {"time_zone": "America/New_York", "password": "brand-new-password"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["time_zone"] == "America/New_York"
    old = world.client.post(
        "/api/v1/auth/login", json={"username": "dora", "password": "dora-password"}
    )
    assert old.status_code == 401
    login(world.client, "dora", "brand-new-password")

    listed = world.call("admin", "GET", "/api/v1/users").json()
    assert [u["username"] for u in listed] == ["alice", "bob", "dora", "root"]


BAD_USERS = [
    ({"username": "ab", "password": "long-enough"}, "username"),
    ({"username": "has space", "password": "long-enough"}, "username"),
    ({"username": "eve", "password": "short"}, "password"),
    ({"username": "eve", "password": "long-enough", "time_zone": "Mars/Olympus"}, "time_zone"),
    ({"username": "eve", "password": "long-enough", "time_zone": "../../etc/passwd"}, "time_zone"),
    ({"username": "eve", "password": "long-enough", "role": "superuser"}, "role"),
    ({"username": "eve", "password": "long-enough", "email": "not-an-address"}, "email"),
    ({"username": "eve", "password": "long-enough", "name": "x" * 201}, "name"),
    ({"username": "eve", "password": "long-enough", "name": "nul\x00"}, "name"),
    ({"username": "eve", "password": "long-enough", "is_admin": True}, "is_admin"),
    ({"username": 42, "password": "long-enough"}, "username"),
]


@pytest.mark.parametrize(("body", "field"), BAD_USERS, ids=[f for _, f in BAD_USERS])
def test_bad_user_input_is_a_400_naming_the_field(world: World, body: Any, field: str) -> None:
    response = world.client.post("/api/v1/users", json=body, headers=world.callers["admin"])
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]


BAD_DEVICES = [
    ({"name": "m", "max_hourly_kwh": 0}, "max_hourly_kwh"),
    ({"name": "m", "max_hourly_kwh": -1}, "max_hourly_kwh"),
    ({"name": "m", "max_hourly_kwh": "lots"}, "max_hourly_kwh"),
    (b'{"name": "m", "max_hourly_kwh": 1e999}', "out of range"),
    ({"name": "m"}, "max_hourly_kwh"),
    ({"name": "", "max_hourly_kwh": 1}, "name"),
    ({"name": "   ", "max_hourly_kwh": 1}, "name"),
    ({"name": "x" * 201, "max_hourly_kwh": 1}, "name"),
    ({"name": "m", "max_hourly_kwh": 1, "meter_kind": "gas"}, "meter_kind"),
    ({"name": "m", "max_hourly_kwh": 1, "rated_power_w": 0}, "rated_power_w"),
    ({"name": "m", "max_hourly_kwh": 1, "interval_s": 0}, "interval_s"),
    ({"name": "m", "max_hourly_kwh": 1, "interval_s": 1.5}, "interval_s"),
    ({"name": "m", "max_hourly_kwh": 1, "address": "\x00"}, "address"),
    ({"name": "m", "max_hourly_kwh": 1, "owner_id": "x"}, "owner_id"),
    ([1, 2], "object"),
]


@pytest.mark.parametrize(("body", "field"), BAD_DEVICES, ids=[str(b)[:40] for b, _ in BAD_DEVICES])
def test_bad_device_input_is_a_400_naming_the_problem(world: World, body: Any, field: str) -> None:
    headers = {**world.callers["admin"], "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = world.client.post("/api/v1/devices", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]
    assert len(world.call("admin", "GET", "/api/v1/devices").json()) == 3


def test_malformed_requests_are_4xx_never_500(world: World) -> None:
    admin = world.callers["admin"]
    raw = {**admin, "Content-Type": "application/json"}
    cases = [
        world.client.post("/api/v1/devices", content=b"{not json", headers=raw),
        world.client.post("/api/v1/devices", content=b"", headers=raw),
        world.client.post("/api/v1/devices", content=b'{"name": "\\ud800"}', headers=raw),
        world.client.patch(f"/api/v1/devices/{world.ids['dev_a']}", json=[], headers=admin),
        world.client.get("/api/v1/devices/not-a-uuid", headers=admin),
        world.client.get("/api/v1/users/12345", headers=admin),
        world.client.get("/api/v1/devices?owner_id=nope", headers=admin),
        world.client.get("/api/v1/audit?page=0", headers=admin),
        world.client.get("/api/v1/audit?page_size=100000", headers=admin),
        world.client.put(f"/api/v1/devices/{world.ids['dev_a']}/owner", json={}, headers=admin),
        world.client.post("/api/v1/auth/login", json={"username": "x" * 10_000, "password": "p"}),
        world.client.post("/api/v1/devices", content=b"x" * 2_000_000, headers=raw),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert response.json()["detail"]


def test_updates_change_only_what_was_sent(world: World) -> None:
    response = world.call(
        "admin",
        "PATCH",
        "/api/v1/devices/{dev_a}",
        {"rated_power_w": 3500, "meter_kind": "interval", "interval_s": 60},
    )
    assert response.status_code == 200, response.text
    device = response.json()
    assert (device["name"], device["rated_power_w"], device["meter_kind"]) == (
        "alice's meter",
        3500.0,
        "interval",
    )
    cleared = world.call("admin", "PATCH", "/api/v1/devices/{dev_a}", {"rated_power_w": None})
    assert cleared.json()["rated_power_w"] is None
    assert cleared.json()["interval_s"] == 60


def test_the_audit_log_records_changes_without_secrets(world: World) -> None:
    created = world.call("admin", "POST", "/api/v1/devices", NEW_DEVICE).json()
    world.call("admin", "PUT", "/api/v1/devices/{dev_free}/owner", {"owner_id": world.ids["bob"]})
    world.call("admin", "PATCH", "/api/v1/users/{alice}", {"password": "alice-new-password"})
    rotated = world.call("admin", "POST", "/api/v1/devices/{dev_a}/credentials").json()
    world.call("admin", "DELETE", "/api/v1/users/{bob}")

    page = world.call("admin", "GET", "/api/v1/audit?page_size=3").json()
    assert page["total"] == 6  # `ems admin create` + five changes
    assert len(page["items"]) == 3
    everything = world.call("admin", "GET", "/api/v1/audit?page_size=100").json()["items"]
    summary = [(e["action"], e["entity"], e["actor_username"]) for e in everything]
    assert summary == [
        ("delete", "user", "root"),
        ("rotate_credentials", "device", "root"),
        ("update", "user", "root"),
        ("assign", "device", "root"),
        ("create", "device", "root"),
        ("create", "user", "ems-cli"),
    ]
    deleted_bob = everything[0]
    assert deleted_bob["before"]["username"] == "bob"
    assert sorted(deleted_bob["before"]["devices"]) == sorted(
        [world.ids["dev_b"], world.ids["dev_free"]]
    )
    assert everything[2]["after"]["password_reset"] is True
    text = str(everything)
    for secret in (created["mqtt_password"], rotated["mqtt_password"], "alice-new-password"):
        assert secret not in text
    assert "argon2" not in text


def test_the_openapi_document_is_public_and_lists_the_contract_paths(world: World) -> None:
    document = world.call("anonymous", "GET", "/schema")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {
        "/api/v1/auth/login": {"post"},
        "/api/v1/auth/logout": {"post"},
        "/api/v1/auth/register": {"post"},
        "/api/v1/me": {"get"},
        "/api/v1/users": {"get", "post"},
        "/api/v1/users/{user_id}": {"get", "patch", "delete"},
        "/api/v1/devices": {"get", "post"},
        "/api/v1/devices/{device_id}": {"get", "patch", "delete"},
        "/api/v1/devices/{device_id}/owner": {"put"},
        "/api/v1/devices/{device_id}/credentials": {"post"},
        "/api/v1/audit": {"get"},
    }.items() <= {path: set(ops) - {"parameters"} for path, ops in paths.items()}.items()


def test_options_allows_exactly_the_documented_methods(world: World) -> None:
    # Litestar's own OPTIONS answer listed only some of a path's methods ("OPTIONS, POST" for
    # /api/v1/users); clients and schemathesis' allow_header_conformance read it.
    paths = world.call("anonymous", "GET", "/schema").json()["paths"]
    for path, operations in paths.items():
        concrete = path.replace("{user_id}", world.ids["alice"]).replace(
            "{device_id}", world.ids["dev_a"]
        )
        concrete = re.sub(r"\{\w+_id\}", world.ids["nobody"], concrete)
        answer = world.client.options(concrete, headers=world.callers["admin"])
        assert answer.status_code == 204, (path, answer.text)
        documented = {method.upper() for method in operations if method != "parameters"}
        assert answer.headers["allow"] == ", ".join(sorted(documented | {"OPTIONS"})), path
