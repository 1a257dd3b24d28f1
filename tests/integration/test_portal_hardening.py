"""Browser hardening: security headers on every response, Secure cookies over https."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.settings import PortalSettings


@pytest.fixture
def client(portal_settings: PortalSettings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(portal_settings)) as test_client:
        yield test_client


def test_every_response_forbids_inline_script_framing_sniffing_and_referrers(
    client: TestClient[Any],
) -> None:
    for path, status in [
        ("/login", 200),
        ("/static/portal.css", 200),
        ("/api/v1/me", 401),
        ("/admin/devices", 303),
        ("/no/such/page", 404),
    ]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == status, path
        csp = {
            directive.split()[0]: directive.split()[1:]
            for directive in response.headers["Content-Security-Policy"].split("; ")
        }
        assert csp["script-src"] == ["'self'"], path  # no 'unsafe-inline', no CDN
        assert csp["style-src"] == ["'self'"], path
        assert csp["frame-ancestors"] == ["'none'"], path
        assert csp["object-src"] == ["'none'"], path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path


def _session_cookie(response: Any) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith("ems_session="))


def _sign_in(client: TestClient[Any], admin: tuple[str, str], **headers: str) -> Any:
    response = client.post(
        "/api/v1/auth/login",
        json={"username": admin[0], "password": admin[1]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response


def test_the_session_cookie_is_secure_whenever_the_portal_is_reached_over_https(
    portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    with TestClient(create_app(portal_settings), base_url="https://portal.example") as https:
        anonymous = https.get("/login").headers.get_list("set-cookie")  # the form's CSRF cookie
        assert anonymous and all("Secure" in c for c in anonymous)
        assert "Secure" in _session_cookie(_sign_in(https, portal_admin))
    with TestClient(create_app(portal_settings)) as plain:
        assert "Secure" not in _session_cookie(_sign_in(plain, portal_admin))
        # X-Forwarded-Proto from a peer that is not a trusted proxy changes nothing.
        forged = _sign_in(plain, portal_admin, **{"X-Forwarded-Proto": "https"})
        assert "Secure" not in _session_cookie(forged)
    behind_tls = dataclasses.replace(portal_settings, trusted_proxies=("testclient",))
    with TestClient(create_app(behind_tls)) as proxied:
        forwarded = _sign_in(proxied, portal_admin, **{"X-Forwarded-Proto": "https"})
        assert "Secure" in _session_cookie(forwarded)
    always = dataclasses.replace(portal_settings, cookie_secure=True)
    with TestClient(create_app(always)) as configured:
        assert "Secure" in _session_cookie(_sign_in(configured, portal_admin))
