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
from typing import Any

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from litestar.testing import TestClient

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
    other = create_app(dataclasses.replace(portal_settings, instance_id="portal-2"))
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


def test_the_eleventh_rapid_wrong_password_is_refused_even_when_right(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    for _ in range(10):
        assert sign_in(client, "root", "guess-again").status_code == 401
    refused = sign_in(client, *portal_admin)
    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0


def test_failures_from_one_address_are_limited_across_user_names(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    for i in range(10):
        assert sign_in(client, f"someone-{i}", "guess").status_code == 401
    assert sign_in(client, *portal_admin).status_code == 429


def test_a_successful_sign_in_clears_the_users_failures(
    client: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    for _ in range(5):
        assert sign_in(client, "root", "guess-again").status_code == 401
    assert sign_in(client, *portal_admin).status_code == 200
    for _ in range(4):
        assert sign_in(client, "root", "guess-again").status_code == 401
    assert sign_in(client, *portal_admin).status_code == 200


def test_clients_can_register_and_sign_in(client: TestClient[Any]) -> None:
    response = client.post(
        "/api/v1/auth/register",
        json={"username": "newbie", "password": "newbie-password", "time_zone": "Asia/Tokyo"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "client"
    again = client.post(
        "/api/v1/auth/register", json={"username": "NEWBIE", "password": "another-password"}
    )
    assert again.status_code == 409
    signed_in = sign_in(client, "newbie", "newbie-password")
    assert signed_in.json()["user"]["time_zone"] == "Asia/Tokyo"
    sneaky = client.post(
        "/api/v1/auth/register",
        json={"username": "sneaky", "password": "sneaky-password", "role": "admin"},
    )
    assert sneaky.status_code == 400


def test_registrations_spend_the_addresss_attempts(client: TestClient[Any]) -> None:
    """Anonymous registrations are rate-limited per address before any password is hashed."""
    for n in range(10):
        response = client.post(
            "/api/v1/auth/register", json={"username": f"new{n}", "password": "new-password-1"}
        )
        assert response.status_code == 201, response.text
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
