"""A client watching their page sees a toast and the bell count go up the moment a reading
pushes the hour over their device's limit — real meter readings, hub, portal and browser."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from playwright.sync_api import Page, expect

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.hubkit import Gateway, create_gateway, start_hub
from devkit.live_portal import LivePortal
from portal.auth.passwords import hash_password
from tests.conftest import BrokerInfo
from tests.e2e.pagestate import wait_until_live
from tests.e2e.test_portal_admin import sign_in

CLIENT, CLIENT_PASSWORD = "carol", "carol-password"


def add_client_with_device(dsn: str) -> uuid.UUID:
    """Client carol (Europe/Paris) with a meter 'Kitchen' whose hourly limit is 1 kWh."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, name, role, password_hash, time_zone)"
            " VALUES (%s, 'Carol', 'client', %s, 'Europe/Paris') RETURNING id",
            (CLIENT, hash_password(CLIENT_PASSWORD)),
        ).fetchone()
        assert row is not None
        device = conn.execute(
            "INSERT INTO devices (name, max_hourly_kwh, owner_id, interval_s)"
            " VALUES ('Kitchen', 1, %s, 60) RETURNING id",
            (row[0],),
        ).fetchone()
    assert device is not None
    return uuid.UUID(str(device[0]))


def test_a_reading_over_the_limit_shows_a_toast_and_bumps_the_bell(
    live_portal: LivePortal,
    database_url: str,
    broker: BrokerInfo,
    page: Page,
    artifacts: Path,
) -> None:
    device = add_client_with_device(database_url)
    # Playwright's sync API owns this thread's event loop: asyncio.run goes to another thread.
    with ThreadPoolExecutor(1) as pool:
        gateway_user = pool.submit(create_gateway, broker).result()
    hub = start_hub(database_url, broker)
    gateway = Gateway(broker, *gateway_user)
    try:
        sign_in(page, live_portal, CLIENT, CLIENT_PASSWORD)
        page.goto(f"{live_portal.url}/dashboard")  # the client is watching their dashboard
        expect(page.get_by_test_id("bell-count")).to_be_hidden()
        wait_until_live(page)
        page.evaluate("window.__sameDocument = true")

        now = datetime.now(UTC).replace(microsecond=0)
        for ts, energy in ((now - timedelta(minutes=2), 100.0), (now, 102.4)):
            gateway.publish(readings_topic(device), encode_reading(Reading(device, ts, energy)))
        gateway.flush()

        toast = page.get_by_test_id("toast")
        expect(toast).to_be_visible()
        expect(toast).to_contain_text("Hourly limit exceeded")
        expect(toast).to_contain_text("Device 'Kitchen' used 2.4 kWh between")
        expect(toast).to_contain_text("above its limit of 1 kWh")
        expect(page.get_by_test_id("bell-count")).to_have_text("1")
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        expect(toast.get_by_test_id("toast-ask")).to_have_attribute(
            "href", re.compile(r"^/chat\?alert=[0-9a-f-]{36}$")
        )
        page.screenshot(path=str(artifacts / "alert-toast.png"), full_page=True)

        # Away and back: a new sign-in (another browser) shows the unread alert on the bell.
        assert page.context.browser is not None
        later = page.context.browser.new_context()
        try:
            again = later.new_page()
            sign_in(again, live_portal, CLIENT, CLIENT_PASSWORD)
            expect(again.get_by_test_id("bell-count")).to_have_text("1")
        finally:
            later.close()

        # The history page comes from the database, and acknowledging clears the bell.
        page.get_by_test_id("bell").click()
        rows = page.get_by_test_id("alerts").locator("tr.alert-row")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("used 2.4 kWh")
        rows.first.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_role("status").first).to_have_text("Alert acknowledged.")
        expect(page.get_by_test_id("bell-count")).to_be_hidden()
        page.get_by_role("link", name="All", exact=True).click()
        expect(rows.first).to_contain_text("Acknowledged")
        page.screenshot(path=str(artifacts / "alert-history.png"), full_page=True)
    finally:
        gateway.close()
        hub.stop()
