"""Signing in and out, tokens that must not work, CSRF, login rate limits, registration."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from litestar.testing import TestClient

from devkit.live_portal import LivePortal
from ems.broker import portal_user
from portal.app import create_app
from portal.settings import PortalSettings


@pytest.fixture
def client(portal_settings: PortalSettings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(portal_settings)) as test_client:
        yield test_client


def sign_in(client: TestClient[Any], username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_admin_from_ems_admin_create_can_sign_in(
    portal_settings: PortalSettings, client: TestClient[Any]
) -> None:
    env = {**os.environ, "EMS_ADMIN_PASSWORD": "first-admin-pw"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ems",
            "admin",
            "create",
            "--username",
            "ops",
            "--database-url",
            portal_settings.database_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = sign_in(client, "ops", "first-admin-pw")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["role"] == "admin"
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.json()["username"] == "ops"


def test_sign_in_sets_an_httponly_session_cookie_and_a_readable_csrf_cookie(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    response = sign_in(client, *portal_admin)
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("ems_session="))
    csrf = next(c for c in cookies if c.startswith("csrftoken="))
    assert "HttpOnly" in session and "SameSite=lax" in session.replace("Lax", "lax")
    assert "HttpOnly" not in csrf
    assert client.get("/api/v1/me").json()["username"] == "root"  # the cookie alone suffices


def test_wrong_passwords_and_unknown_users_get_the_same_401(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    wrong = sign_in(client, "root", "not-the-password")
    unknown = sign_in(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "status_code": 401,
            "detail": "wrong username or password",
        }
    )


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": "admin",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs512(claims: dict[str, Any], secret: str) -> str:
    with warnings.catch_warnings():  # the real secret is too short for HS512: that is the point
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS512")


def test_forged_expired_and_revoked_tokens_are_refused(
    portal_settings: PortalSettings, client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    good = sign_in(client, *portal_admin).json()
    client.cookies.clear()
    token, user_id = good["access_token"], good["user"]["id"]
    secret = portal_settings.jwt_secret
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200

    header, payload, signature = token.split(".")
    elevated = json.loads(base64.urlsafe_b64decode(payload + "=="))
    elevated["sub"] = str(uuid.uuid4())
    tampered_payload = base64.urlsafe_b64encode(json.dumps(elevated).encode()).rstrip(b"=")
    unsigned_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
    refused = {
        "tampered payload": f"{header}.{tampered_payload.decode()}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{unsigned_header.decode()}.{payload}.",
        "other secret": jwt.encode(_claims(user_id), "another-secret-" * 3, algorithm="HS256"),
        "expired": jwt.encode(_claims(user_id, exp=int(time.time()) - 5), secret, "HS256"),
        "no jti": jwt.encode(_claims(user_id, jti=None), secret, algorithm="HS256"),
        "unknown user": jwt.encode(_claims(str(uuid.uuid4())), secret, algorithm="HS256"),
        "HS512": _hs512(_claims(user_id), secret),
        "garbage": "not.a.token",
    }
    for what, forged in refused.items():
        response = client.get("/api/v1/me", headers=bearer(forged))
        assert response.status_code == 401, what
    # A well-formed token signed with the real secret works — the refusals above are about
    # the forgery, not the test's token construction.
    assert (
        client.get(
            "/api/v1/me", headers=bearer(jwt.encode(_claims(user_id), secret, algorithm="HS256"))
        ).status_code
        == 200
    )

    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert client.get("/api/v1/devices", headers=bearer(token)).status_code == 401


def test_a_token_revoked_on_one_replica_is_refused_by_another(
    portal_settings: PortalSettings, client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    token = sign_in(client, *portal_admin).json()["access_token"]
    client.cookies.clear()
    other = create_app(
        dataclasses.replace(portal_settings, instance_id="portal-2", mqtt_username=portal_user(2))
    )
    with TestClient(other) as replica:
        assert replica.get("/api/v1/me", headers=bearer(token)).status_code == 200
        assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
        deadline = time.monotonic() + 5
        while replica.get("/api/v1/me", headers=bearer(token)).status_code != 401:
            assert time.monotonic() < deadline, "the other replica still accepts the token"


def test_cookie_writes_need_the_csrf_token_and_bearer_writes_do_not(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    body = sign_in(client, *portal_admin).json()
    new_user = {"username": "csrf-victim", "password": "long-enough"}
    without = client.post("/api/v1/users", json=new_user)
    assert without.status_code == 403
    assert "CSRF" in without.json()["detail"]
    wrong = client.post("/api/v1/users", json=new_user, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    csrf = client.cookies["csrftoken"]
    assert csrf == body["csrf_token"]
    ok = client.post("/api/v1/users", json=new_user, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    assert client.get("/api/v1/users").status_code == 200  # reads need no token

    client.cookies.clear()
    api = client.post(
        "/api/v1/users",
        json={**new_user, "username": "api-made"},
        headers=bearer(body["access_token"]),
    )
    assert api.status_code == 201, api.text


@pytest.fixture
def behind_proxy(portal_settings: PortalSettings) -> Iterator[TestClient[Any]]:
    """A portal behind a trusted reverse proxy: the test client's peer name is "testclient",
    so trusting it makes each request's X-Forwarded-For the caller's address. No back-off, so
    the counted limits can be reached without waiting."""
    settings = dataclasses.replace(
        portal_settings, trusted_proxies=("testclient",), login_backoff_s=0
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def sign_in_from(client: TestClient[Any], address: str, username: str, password: str) -> Any:
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


GUESSER, OWNER = "203.0.113.7", "198.51.100.20"


def test_a_guesser_is_refused_but_the_owner_signs_in_from_elsewhere(
    behind_proxy: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    for _ in range(10):
        assert sign_in_from(behind_proxy, GUESSER, "root", "guess-again").status_code == 401
    refused = sign_in_from(behind_proxy, GUESSER, *portal_admin)
    assert refused.status_code == 429  # even the right password, or guessing would go on
    assert "too many failed sign-ins from this address" in refused.json()["detail"]
    assert 0 < int(refused.headers["Retry-After"]) <= 300
    assert sign_in_from(behind_proxy, OWNER, *portal_admin).status_code == 200
    # The owner's success does not clear the guesser's failures.
    assert sign_in_from(behind_proxy, GUESSER, *portal_admin).status_code == 429


def test_the_limits_are_shared_by_every_replica(
    portal_settings: PortalSettings, behind_proxy: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    for _ in range(10):
        assert sign_in_from(behind_proxy, GUESSER, "root", "guess-again").status_code == 401
    settings = dataclasses.replace(
        portal_settings, instance_id="portal-2", trusted_proxies=("testclient",)
    )
    with TestClient(create_app(settings)) as replica:
        assert sign_in_from(replica, GUESSER, *portal_admin).status_code == 429
        assert sign_in_from(replica, OWNER, *portal_admin).status_code == 200


def test_failures_from_one_address_are_limited_across_user_names(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    settings = dataclasses.replace(
        portal_settings,
        trusted_proxies=("testclient",),
        login_backoff_s=0,
        login_address_max_failures=12,
    )
    with TestClient(create_app(settings)) as client:
        for i in range(12):
            assert sign_in_from(client, GUESSER, f"someone-{i}", "guess").status_code == 401
        assert sign_in_from(client, GUESSER, *portal_admin).status_code == 429
        assert sign_in_from(client, OWNER, *portal_admin).status_code == 200


def test_repeated_failures_back_off_for_that_address_only(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    settings = dataclasses.replace(
        portal_settings, trusted_proxies=("testclient",), login_backoff_s=40
    )
    with TestClient(create_app(settings)) as client:
        for _ in range(3):  # throttle.BACKOFF_AFTER free failures
            assert sign_in_from(client, GUESSER, "root", "guess-again").status_code == 401
        waiting = sign_in_from(client, GUESSER, *portal_admin)
        assert waiting.status_code == 429
        assert 0 < int(waiting.headers["Retry-After"]) <= 40
        assert sign_in_from(client, OWNER, *portal_admin).status_code == 200


def test_forwarded_for_from_an_untrusted_peer_does_not_change_the_address(
    portal_settings: PortalSettings, portal_admin: tuple[str, str], tmp_path: Path
) -> None:
    """A real uvicorn, reached directly (no proxy configured): a client that invents a new
    X-Forwarded-For for every guess is still one address to the limiter."""
    settings = dataclasses.replace(portal_settings, login_address_max_failures=10)
    with LivePortal(settings, tmp_path / "portal.log") as portal, httpx.Client() as http:
        url = f"{portal.url}/api/v1/auth/login"

        def spray(i: int) -> int:
            guess = {"username": f"someone-{i}", "password": "guess"}
            spoofed = {"X-Forwarded-For": f"192.0.2.{i + 1}"}
            return http.post(url, json=guess, headers=spoofed).status_code

        assert [spray(i) for i in range(10)] == [401] * 10
        assert spray(10) == 429


def test_a_successful_sign_in_clears_the_addresss_failures(
    behind_proxy: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    for _ in range(5):
        assert sign_in_from(behind_proxy, OWNER, "root", "guess-again").status_code == 401
    assert sign_in_from(behind_proxy, OWNER, *portal_admin).status_code == 200
    for _ in range(9):
        assert sign_in_from(behind_proxy, OWNER, "root", "guess-again").status_code == 401
    assert sign_in_from(behind_proxy, OWNER, *portal_admin).status_code == 200


def test_clients_can_register_and_sign_in(client: TestClient[Any]) -> None:
    response = client.post(
        "/api/v1/auth/register",
        json={"username": "newbie", "password": "newbie-password", "time_zone": "Asia/Tokyo"},
    )
    assert response.status_code == 202, response.text
    signed_in = sign_in(client, "newbie", "newbie-password")
    assert signed_in.json()["user"]["time_zone"] == "Asia/Tokyo"
    assert signed_in.json()["user"]["role"] == "client"
    sneaky = client.post(
        "/api/v1/auth/register",
        json={"username": "sneaky", "password": "sneaky-password", "role": "admin"},
    )
    assert sneaky.status_code == 400


def test_registration_does_not_reveal_which_user_names_exist(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    fresh = client.post(
        "/api/v1/auth/register", json={"username": "newbie", "password": "newbie-password"}
    )
    answers = [
        client.post("/api/v1/auth/register", json={"username": name, "password": "taken-pw-1"})
        for name in ("NEWBIE", "root")  # a client's name (any case), the administrator's
    ]
    for taken in answers:
        assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())
    assert fresh.status_code == 202
    assert "sign in" in fresh.json()["detail"]
    # Nothing changed for the existing accounts.
    assert sign_in(client, "newbie", "taken-pw-1").status_code == 401
    assert sign_in(client, "newbie", "newbie-password").status_code == 200
    assert sign_in(client, *portal_admin).json()["user"]["role"] == "admin"


def test_registrations_spend_the_addresss_attempts(client: TestClient[Any]) -> None:
    """Anonymous registrations are rate-limited per address before any password is hashed."""
    for n in range(10):
        response = client.post(
            "/api/v1/auth/register", json={"username": f"new{n}", "password": "new-password-1"}
        )
        assert response.status_code == 202, response.text
    refused = client.post(
        "/api/v1/auth/register", json={"username": "new10", "password": "new-password-1"}
    )
    assert refused.status_code == 429
    assert "from this address" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0


def test_registration_can_be_turned_off(portal_settings: PortalSettings) -> None:
    closed = dataclasses.replace(portal_settings, allow_registration=False)
    with TestClient(create_app(closed)) as client:
        response = client.post(
            "/api/v1/auth/register", json={"username": "newbie", "password": "newbie-password"}
        )
        assert response.status_code == 403
        assert "turned off" in response.json()["detail"]


def test_a_password_reset_ends_every_earlier_session_of_that_user_on_every_replica(
    portal_settings: PortalSettings, client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    admin = sign_in(client, *portal_admin).json()["access_token"]
    client.cookies.clear()
    created = client.post(
        "/api/v1/users",
        json={"username": "carol", "password": "carol-password"},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    laptop = sign_in(client, "carol", "carol-password").json()["access_token"]
    phone = sign_in(client, "carol", "carol-password").json()["access_token"]
    client.cookies.clear()
    other = create_app(dataclasses.replace(portal_settings, instance_id="portal-2"))
    with TestClient(other) as replica:
        assert replica.get("/api/v1/me", headers=bearer(phone)).status_code == 200
        reset = client.patch(
            f"/api/v1/users/{created.json()['id']}",
            json={"password": "carol-new-password"},
            headers=bearer(admin),
        )
        assert reset.status_code == 200, reset.text
        assert client.get("/api/v1/me", headers=bearer(laptop)).status_code == 401
        deadline = time.monotonic() + 5
        while replica.get("/api/v1/me", headers=bearer(phone)).status_code != 401:
            assert time.monotonic() < deadline, "the other replica still accepts the old session"
    fresh = sign_in(client, "carol", "carol-new-password").json()["access_token"]
    assert client.get("/api/v1/me", headers=bearer(fresh)).json()["username"] == "carol"
    assert client.get("/api/v1/me", headers=bearer(admin)).status_code == 200  # not the admin's


def test_an_administrators_own_password_change_and_a_cli_reset_end_their_sessions(
    portal_settings: PortalSettings, client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    from ems.admin import ensure_admin

    body = sign_in(client, *portal_admin).json()
    client.cookies.clear()
    token, admin_id = body["access_token"], body["user"]["id"]
    changed = client.patch(
        f"/api/v1/users/{admin_id}", json={"password": "root-password-2"}, headers=bearer(token)
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401

    token = sign_in(client, "root", "root-password-2").json()["access_token"]
    client.cookies.clear()
    ensure_admin(portal_settings.database_url, "root", "root-password-3", reset=True)
    deadline = time.monotonic() + 5  # the authenticator's cache lives at most auth_cache_ttl_s
    while client.get("/api/v1/me", headers=bearer(token)).status_code != 401:
        assert time.monotonic() < deadline, "the session survived `ems admin create --reset`"
