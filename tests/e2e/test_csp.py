"""The main pages work under the Content-Security-Policy: nothing is refused in a real browser.

A CSP violation breaks a page silently (a script, a style or the WebSocket simply does not
load), so every violation the browser reports fails the test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devkit.hubkit import add_devices
from devkit.live_portal import LivePortal
from tests.e2e.pagestate import wait_until_live
from tests.e2e.test_portal_admin import sign_in
from tests.integration.test_portal_api import password_hash

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


def add_user(dsn: str, username: str) -> uuid.UUID:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, name, role, password_hash)"
            " VALUES (%s, %s, 'client', %s) RETURNING id",
            (username, username.title(), password_hash(f"{username}-password")),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def watched(browser: Browser) -> tuple[BrowserContext, Page, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: (
            violations.append(m.text)
            if "Content Security Policy" in m.text or "CSP" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
    return context, page, violations


def visit(page: Page, url: str, *, signed_in: bool = True) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, url
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    page.wait_for_load_state("load")
    if signed_in:  # the WebSocket is allowed too (connect-src)
        wait_until_live(page)


def test_the_main_pages_run_under_the_content_security_policy(
    live_portal: LivePortal, portal_admin: tuple[str, str], browser: Browser
) -> None:
    dsn = live_portal.settings.database_url
    dana = add_user(dsn, "dana")
    spare = add_user(dsn, "spare")
    [device] = add_devices(dsn, 1, owner_id=dana, max_hourly_kwh=4.0)
    # 3 of 4 kWh in the hours around now, so the bar is three quarters full whichever hour the
    # page takes for the current one.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
            " VALUES (%s, %s, 3.0, 'measured', 6)",
            [(device, hour + k * timedelta(hours=1)) for k in (-1, 0, 1)],
        )
    base = live_portal.url

    context, page, violations = watched(browser)
    try:
        visit(page, f"{base}/login", signed_in=False)
        visit(page, f"{base}/register", signed_in=False)
        sign_in(page, live_portal, *portal_admin)
        expect(page).to_have_url(f"{base}/admin/devices")
        for path in (
            "/admin/devices",
            f"/admin/devices/{device}",
            "/admin/users",
            "/admin/fleet",
            "/admin/alerts",
            "/admin/audit",
            "/admin/chat",
            f"/admin/users/{spare}",
        ):
            visit(page, base + path)
        # The delete confirmation (a static script now, no inline handler) still asks first.
        page.once("dialog", lambda d: d.dismiss())
        page.get_by_role("button", name="Delete user").click()
        expect(page).to_have_url(f"{base}/admin/users/{spare}")
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Delete user").click()
        expect(page.get_by_role("status")).to_have_text(
            "User deleted; their devices are now unassigned."
        )
    finally:
        context.close()
    assert violations == []

    context, page, violations = watched(browser)
    try:
        sign_in(page, live_portal, "dana", "dana-password")
        expect(page).to_have_url(f"{base}/devices")
        visit(page, f"{base}/dashboard")
        # The hour bar's width comes from a script, not an inline style attribute.
        bar = page.locator('[data-field="hour-bar"] > span').first
        assert bar.get_attribute("data-share") == "75.0"
        assert bar.evaluate("el => el.style.width") == "75%"
        for path in ("/devices", f"/dashboard/devices/{device}", "/alerts", "/chat"):
            visit(page, base + path)
    finally:
        context.close()
    assert violations == []
