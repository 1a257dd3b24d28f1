"""A client and an administrator chat in two real browsers: messages, typing and read receipts
arrive without a reload, text stays text, and the history is there after a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from devkit.live_portal import LivePortal
from tests.e2e.pagestate import wait_until_live
from tests.e2e.test_portal_admin import sign_in
from tests.integration.test_portal_api import password_hash

MARKUP = "<script>window.pwned = 1</script><b>bold?</b> Is my meter OK?"


@pytest.fixture
def client_page(browser: Browser, live_portal: LivePortal) -> Iterator[Page]:
    """A second browser context, signed in as the client Alice."""
    with psycopg.connect(live_portal.settings.database_url) as conn:
        conn.execute(
            "INSERT INTO users (username, name, role, password_hash)"
            " VALUES ('alice', 'Alice Client', 'client', %s)",
            (password_hash("alice-password"),),
        )
    context = browser.new_context(viewport={"width": 1100, "height": 850})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, live_portal, "alice", "alice-password")
        expect(page).to_have_url(f"{live_portal.url}/devices")
        yield page
    finally:
        context.close()


def refuse_dialogs(page: Page) -> None:
    def fail(dialog: Dialog) -> None:
        dialog.dismiss()
        raise AssertionError(f"a script from a message ran: {dialog.message}")

    page.on("dialog", fail)


def live(page: Page) -> None:
    wait_until_live(page)


def test_a_client_and_an_administrator_chat_live(
    live_portal: LivePortal,
    portal_admin: tuple[str, str],
    page: Page,
    client_page: Page,
    artifacts: Path,
) -> None:
    alice, admin = client_page, page
    for each in (alice, admin):
        refuse_dialogs(each)
    alice.goto(f"{live_portal.url}/chat")
    live(alice)
    sign_in(admin, live_portal, *portal_admin)
    admin.goto(f"{live_portal.url}/admin/chat")
    live(admin)
    entry = admin.get_by_test_id("conversations").get_by_role("link", name="Alice Client")
    expect(entry).to_contain_text("No messages yet")

    # Alice writes while no administrator has her conversation open: it stays "Sent".
    alice.get_by_label("Message").fill(MARKUP)
    alice.get_by_label("Message").press("Enter")
    mine = alice.get_by_test_id("message").last
    expect(mine.locator(".body")).to_have_text(MARKUP)
    expect(mine.get_by_test_id("receipt")).to_have_text("Sent")
    expect(alice.get_by_test_id("older")).to_be_hidden()
    # The inbox counts it without a reload, and shows the preview as text.
    expect(entry.get_by_test_id("unread")).to_have_text("1")
    expect(entry).to_contain_text("<script>window.pwned = 1</script>")

    # Opening the conversation reads it: Alice sees the receipt.
    entry.click()
    expect(admin.get_by_test_id("open-title")).to_have_text("Alice Client")
    expect(admin.get_by_test_id("message").last.locator(".body")).to_have_text(MARKUP)
    expect(mine.get_by_test_id("receipt")).to_have_text("Read")
    expect(entry.get_by_test_id("unread")).to_be_hidden()

    # The administrator types: Alice sees it; the answer replaces the indicator.
    admin.get_by_label("Message").press_sequentially("We are looking into it", delay=20)
    expect(alice.get_by_test_id("typing")).to_have_text("Support is typing…")
    alice.screenshot(path=str(artifacts / "chat-client-sees-typing.png"), full_page=True)
    admin.get_by_label("Message").press("Enter")
    expect(alice.get_by_test_id("message").last.locator(".body")).to_have_text(
        "We are looking into it"
    )
    expect(alice.get_by_test_id("typing")).to_be_hidden()
    expect(admin.get_by_test_id("message").last.get_by_test_id("receipt")).to_have_text("Read")

    # Alice types and stops: the administrator's indicator appears, then clears by itself.
    alice.get_by_label("Message").press_sequentially("Thanks", delay=20)
    expect(admin.get_by_test_id("typing")).to_have_text("Alice Client is typing…")
    admin.screenshot(path=str(artifacts / "chat-admin-inbox.png"), full_page=True)
    expect(admin.get_by_test_id("typing")).to_be_hidden()

    # A reload shows the same history, the markup still as text, and no script ran.
    alice.reload()
    expect(alice.get_by_test_id("message")).to_have_count(2)
    expect(alice.get_by_test_id("message").first.locator(".body")).to_have_text(MARKUP)
    assert alice.evaluate("window.pwned") is None
    assert admin.evaluate("window.pwned") is None
    alice.screenshot(path=str(artifacts / "chat-client.png"), full_page=True)


def test_a_client_asks_about_one_of_their_alerts(
    live_portal: LivePortal, portal_admin: tuple[str, str], page: Page, client_page: Page
) -> None:
    with psycopg.connect(live_portal.settings.database_url) as conn:
        row = conn.execute(
            "WITH d AS (INSERT INTO devices (name, max_hourly_kwh, owner_id)"
            " SELECT 'Heat pump', 2.5, id FROM users WHERE username = 'alice' RETURNING id,"
            " owner_id) INSERT INTO alerts (device_id, user_id, kind, hour, limit_kwh, value_kwh)"
            " SELECT id, owner_id, 'hourly_limit', '2026-11-25T10:00:00Z', 2.5, 3.1 FROM d"
            " RETURNING id"
        ).fetchone()
    assert row is not None
    alice = client_page
    alice.goto(f"{live_portal.url}/alerts")  # from the alert history, as a client would
    alice.locator(f"tr[data-alert-id='{row[0]}']").get_by_test_id("ask-about-alert").click()
    expect(alice).to_have_url(f"{live_portal.url}/chat?alert={row[0]}")
    reference = alice.get_by_test_id("alert-ref")
    expect(reference).to_contain_text("Hourly limit exceeded · Heat pump")
    alice.get_by_label("Message").fill("Why did this happen?")
    alice.get_by_role("button", name="Send").click()
    expect(alice.get_by_test_id("message").last).to_contain_text("About alert: Hourly limit")
    expect(reference).to_have_count(0)  # the reference goes with the message that carried it

    sign_in(page, live_portal, *portal_admin)
    page.goto(f"{live_portal.url}/admin/chat")
    page.get_by_test_id("conversations").get_by_role("link", name="Alice Client").click()
    sent = page.get_by_test_id("message").last
    expect(sent).to_contain_text("About alert: Hourly limit exceeded · Heat pump")
    expect(sent.locator(".body")).to_have_text("Why did this happen?")
