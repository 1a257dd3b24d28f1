"""An administrator sets up a client and their meter in a real browser; the client sees it."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from devkit.live_portal import LivePortal


def sign_in(page: Page, portal: LivePortal, username: str, password: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_admin_creates_assigns_and_the_client_sees_exactly_that_device(
    live_portal: LivePortal,
    portal_admin: tuple[str, str],
    page: Page,
    browser: Browser,
    artifacts: Path,
) -> None:
    sign_in(page, live_portal, *portal_admin)
    expect(page).to_have_url(f"{live_portal.url}/admin/devices")

    page.get_by_role("link", name="Users").click()
    form = page.get_by_test_id("new-user")
    form.get_by_label("User name").fill("carol")
    form.get_by_label("Password").fill("carol-password")
    form.get_by_label("Name", exact=True).fill("Carol Client")
    form.get_by_label("Time zone").fill("Europe/Paris")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("User created.")
    expect(page.get_by_test_id("users")).to_contain_text("Carol Client")

    page.get_by_role("link", name="Devices").click()
    form = page.get_by_test_id("new-device")
    form.get_by_label("Name", exact=True).fill("Carol's heat pump")
    form.get_by_label("Address").fill("12 Rue des Lilas")
    form.get_by_label("Hourly limit (kWh)").fill("3.5")
    form.get_by_role("button", name="Create device").click()
    expect(page.get_by_role("heading", name="Device created")).to_be_visible()
    password = page.get_by_test_id("mqtt-password").inner_text()
    assert len(password) >= 24
    page.screenshot(path=str(artifacts / "portal-admin-device-created.png"), full_page=True)

    page.get_by_role("link", name="Continue to the device").click()
    page.get_by_label("Owner").select_option(label="carol (Carol Client)")
    page.get_by_role("button", name="Set owner").click()
    expect(page.get_by_role("status")).to_have_text("Owner changed.")
    page.get_by_role("link", name="← Devices").click()
    expect(page.get_by_test_id("devices")).to_contain_text("carol")
    # A second device that is nobody's: carol must not see it.
    form = page.get_by_test_id("new-device")
    form.get_by_label("Name", exact=True).fill("Spare meter")
    form.get_by_label("Hourly limit (kWh)").fill("1")
    form.get_by_role("button", name="Create device").click()
    expect(page.get_by_role("heading", name="Device created")).to_be_visible()
    page.get_by_role("link", name="Devices").click()
    expect(page.get_by_test_id("devices").locator("tbody tr")).to_have_count(2)
    page.screenshot(path=str(artifacts / "portal-admin-devices.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    client_context = browser.new_context()
    try:
        client = client_context.new_page()
        sign_in(client, live_portal, "carol", "carol-password")
        expect(client).to_have_url(f"{live_portal.url}/devices")
        cards = client.get_by_test_id("my-devices").locator("li")
        expect(cards).to_have_count(1)
        expect(cards.first).to_contain_text("Carol's heat pump")
        expect(cards.first).to_contain_text("3.5 kWh")
        client.screenshot(path=str(artifacts / "portal-client-devices.png"), full_page=True)

        client.goto(f"{live_portal.url}/admin/users")
        expect(client).to_have_url(f"{live_portal.url}/devices")
        expect(client.get_by_role("link", name="Users")).to_have_count(0)
    finally:
        client_context.close()
