"""HTML pages through a cookie-keeping client: sign-in, guards, forms with CSRF tokens."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from ems.procs import free_port
from portal.app import create_app
from portal.settings import PortalSettings


@pytest.fixture
def browser(portal_settings: PortalSettings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(portal_settings)) as client:
        client.follow_redirects = False  # the tests look at where each answer sends the browser
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def sign_in(client: TestClient[Any], username: str, password: str, next_: str = "") -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_,
            "csrf_token": csrf_of(page.text),
        },
    )


def test_anonymous_visitors_are_sent_to_sign_in_and_back(
    browser: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    page = browser.get("/admin/users")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fadmin%2Fusers"
    assert browser.get("/").headers["location"] == "/login"
    signed_in = sign_in(browser, *portal_admin, next_="/admin/users")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/admin/users"
    assert "root" in browser.get("/admin/users").text


def test_sign_in_never_redirects_off_site(
    browser: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    signed_in = sign_in(browser, *portal_admin, next_="//evil.example/")
    assert signed_in.headers["location"] == "/admin/devices"


def test_wrong_password_and_a_forged_form_are_refused(
    browser: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    wrong = sign_in(browser, "root", "not-it")
    assert wrong.status_code == 401
    assert "wrong username or password" in wrong.text
    browser.get("/login")
    forged = browser.post(
        "/login", data={"username": "root", "password": portal_admin[1], "csrf_token": "f" * 64}
    )
    assert forged.status_code == 400
    assert "ems_session" not in browser.cookies


def test_an_admin_manages_users_and_devices_through_forms(
    browser: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    sign_in(browser, *portal_admin)
    token = csrf_of(browser.get("/admin/users").text)
    created = browser.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "erin",
            "password": "erin-password",
            "role": "client",
            "name": "Erin",
            "email": "",
            "time_zone": "Europe/Berlin",
        },
    )
    assert created.status_code == 303
    users = browser.get(created.headers["location"]).text
    assert "User created." in users and "erin" in users
    bad = browser.post(
        "/admin/users",
        data={"csrf_token": token, "username": "x", "password": "short", "time_zone": "UTC"},
    )
    assert bad.status_code == 400
    assert 'role="alert"' in bad.text

    device = browser.post(
        "/admin/devices",
        data={
            "csrf_token": token,
            "name": "Erin's meter",
            "max_hourly_kwh": "3.5",
            "meter_kind": "cumulative",
            "rated_power_w": "",
            "interval_s": "600",
        },
    )
    assert device.status_code == 200, device.text
    assert "shown only now" in device.text
    device_id = re.search(r'data-testid="mqtt-username">([0-9a-f-]{36})<', device.text)
    assert device_id
    erin_id = re.search(
        r'<option value="([0-9a-f-]{36})" >erin',
        browser.get(f"/admin/devices/{device_id.group(1)}").text,
    )
    assert erin_id
    assigned = browser.post(
        f"/admin/devices/{device_id.group(1)}/owner",
        data={"csrf_token": token, "owner_id": erin_id.group(1)},
    )
    assert assigned.status_code == 303
    assert "erin" in browser.get("/admin/devices").text
    audit = browser.get("/admin/audit").text
    assert "assign" in audit and "erin-password" not in audit

    no_token = browser.post(f"/admin/devices/{device_id.group(1)}/delete", data={})
    assert no_token.status_code == 403
    assert browser.get(f"/admin/devices/{device_id.group(1)}").status_code == 200


def test_a_client_sees_only_their_page_and_is_sent_home_from_admin_pages(
    browser: TestClient[Any], portal_settings: PortalSettings
) -> None:
    registered = browser.get("/register")
    done = browser.post(
        "/register",
        data={
            "csrf_token": csrf_of(registered.text),
            "username": "frank",
            "password": "frank-password",
            "name": "",
            "email": "",
            "time_zone": "UTC",
        },
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/devices"
    mine = browser.get("/devices")
    assert "No devices are assigned to you yet" in mine.text
    for admin_page in ("/admin/users", "/admin/devices", "/admin/audit"):
        refused = browser.get(admin_page)
        assert refused.status_code == 303
        assert refused.headers["location"] == "/devices"

    signed_out = browser.post("/logout", data={"csrf_token": csrf_of(mine.text)})
    assert signed_out.headers["location"] == "/login"
    assert browser.get("/devices").status_code == 303

    # The name is taken now: the page says so only after trying to sign in with it.
    again = browser.get("/register")
    taken = browser.post(
        "/register",
        data={"csrf_token": csrf_of(again.text), "username": "frank", "password": "other-pw-12"},
    )
    assert taken.status_code == 400
    assert "that user name is not available" in taken.text


def test_missing_pages_and_unknown_devices_render_an_error_page(
    browser: TestClient[Any], portal_admin: tuple[str, str]
) -> None:
    sign_in(browser, *portal_admin)
    missing = browser.get("/admin/devices/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert "Not found" in missing.text and "<html" in missing.text


def test_refused_device_changes_show_the_page_again_with_the_reason(
    browser: TestClient[Any], portal_settings: PortalSettings, portal_admin: tuple[str, str]
) -> None:
    sign_in(browser, *portal_admin)
    token = csrf_of(browser.get("/admin/devices").text)
    fields = {"csrf_token": token, "name": "Gina's meter", "meter_kind": "cumulative"}
    refused = browser.post("/admin/devices", data={**fields, "max_hourly_kwh": "-1"})
    assert refused.status_code == 400
    assert 'role="alert"' in refused.text and "max_hourly_kwh" in refused.text
    assert "Gina&#39;s meter" in refused.text  # the form keeps what was typed
    created = browser.post("/admin/devices", data={**fields, "max_hourly_kwh": "2"})
    assert created.status_code == 200, created.text
    found = re.search(r'data-testid="mqtt-username">([0-9a-f-]{36})<', created.text)
    assert found
    page = f"/admin/devices/{found.group(1)}"

    for path, data in (
        (page, {"csrf_token": token, "max_hourly_kwh": "-1"}),
        (f"{page}/owner", {"csrf_token": token, "owner_id": "not-a-user"}),
    ):
        answer = browser.post(path, data=data)
        assert answer.status_code == 400, path
        assert 'role="alert"' in answer.text and "Gina&#39;s meter" in answer.text

    # Without the broker, credentials cannot change: the page says so and nothing happened.
    nowhere = dataclasses.replace(portal_settings, mqtt_port=free_port(), broker_wait_s=0.3)
    with TestClient(create_app(nowhere)) as away:
        away.follow_redirects = False
        sign_in(away, *portal_admin)
        away_token = csrf_of(away.get(page).text)
        for action in ("credentials", "delete"):
            answer = away.post(f"{page}/{action}", data={"csrf_token": away_token})
            assert answer.status_code == 503, action
            assert 'role="alert"' in answer.text and "broker" in answer.text
            assert "Gina&#39;s meter" in answer.text
    assert browser.get(page).status_code == 200
