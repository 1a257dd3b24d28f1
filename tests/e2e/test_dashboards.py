"""Dashboards in a real browser: a client picks a day and sees the API's numbers as bars and
rows, downloads them as CSV, and watches a reading arrive live; an administrator sees the fleet.
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from playwright.sync_api import Browser, Page, expect

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import Gateway, add_devices, count, create_gateway, start_hub
from devkit.live_portal import LivePortal
from tests.conftest import BrokerInfo
from tests.e2e.pagestate import wait_until_live
from tests.e2e.test_portal_admin import sign_in
from tests.integration.test_portal_api import password_hash

TZ = "Europe/Bucharest"
AUTUMN = "2026-10-25"  # the clocks go back: 25 hours
H = timedelta(hours=1)


def add_client(dsn: str, username: str) -> uuid.UUID:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO users (username, name, role, password_hash, time_zone)"
            " VALUES (%s, %s, 'client', %s, %s) RETURNING id",
            (username, username.title(), password_hash(f"{username}-password"), TZ),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def store_day(dsn: str, device: uuid.UUID) -> None:
    """The 25 hours of 2026-10-25 in Bucharest: two estimated, one without data."""
    start = datetime.fromisoformat(f"{AUTUMN}T00:00:00+03:00").astimezone(UTC)
    rows = [
        (
            device,
            start + k * H,
            round(0.4 + 0.07 * k, 3),
            "estimated" if k in (3, 4) else "measured",
        )
        for k in range(25)
        if k != 10
    ]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality, readings)"
            " VALUES (%s, %s, %s, %s, 6)",
            rows,
        )


def api(page: Page, portal: LivePortal, path: str) -> Any:
    response = page.request.get(f"{portal.url}{path}")  # the page's session cookie
    assert response.ok, response.text()
    return response.json()


def test_a_client_picks_a_day_and_sees_the_apis_numbers_as_bars_rows_and_csv(
    live_portal: LivePortal, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    dsn = live_portal.settings.database_url
    owner = add_client(dsn, "dora")
    (device,) = add_devices(dsn, 1, owner_id=owner, max_hourly_kwh=2.0)
    store_day(dsn, device)
    sign_in(page, live_portal, "dora", "dora-password")
    page.goto(f"{live_portal.url}/dashboard")
    page.get_by_test_id("device-card").get_by_role("link", name="meter 0").click()
    expect(page.get_by_role("heading", name="meter 0")).to_be_visible()

    page.get_by_test_id("day-picker").fill(AUTUMN)
    expect(page.get_by_test_id("day-summary")).to_contain_text(f"{AUTUMN}: ")
    expect(page.get_by_test_id("day-summary")).to_contain_text("in 25 hours")
    expected = api(page, live_portal, f"/api/v1/devices/{device}/consumption/hourly?date={AUTUMN}")
    values = [h["energy_kwh"] for h in expected["hours"]]
    assert len(values) == 25 and values[10] is None

    chart = page.get_by_test_id("day-chart")
    expect(chart.locator("canvas")).to_have_count(1)  # uPlot was served and drew
    assert json.loads(chart.get_attribute("data-values") or "[]") == values
    qualities = json.loads(chart.get_attribute("data-qualities") or "[]")
    assert qualities == [h["quality"] for h in expected["hours"]]
    rows = page.get_by_test_id("day-table").locator("tbody tr")
    expect(rows).to_have_count(25)
    cells = rows.locator('[data-field="energy"]').all_inner_texts()
    assert cells == ["—" if v is None else f"{v:.3f}" for v in values]
    labels = rows.locator("td:first-child").all_inner_texts()
    assert "03:00 (+03:00)" in labels and "03:00 (+02:00)" in labels  # the repeated hour
    expect(rows.nth(3)).to_have_class("q-estimated")
    expect(page.get_by_text("Estimated or corrected").first).to_be_visible()  # the legend
    expect(page).to_have_url(
        f"{live_portal.url}/dashboard/devices/{device}?date={AUTUMN}&range=week"
    )

    expect(page.get_by_test_id("range-summary")).to_contain_text("2026-10-19 … 2026-10-25")
    daily = api(
        page, live_portal, f"/api/v1/devices/{device}/consumption/daily?from=2026-10-19&to={AUTUMN}"
    )
    range_values = json.loads(page.get_by_test_id("range-chart").get_attribute("data-values") or "")
    assert range_values == [d["energy_kwh"] for d in daily["days"]]
    assert daily["days"][-1]["energy_kwh"] == expected["total_kwh"]
    page.screenshot(path=str(artifacts / "dashboard-client-day.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_test_id("csv-hourly").click()
    saved = tmp_path / "hourly.csv"
    download.value.save_as(saved)
    with saved.open(newline="") as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == 25
    for row, hour in zip(exported, expected["hours"], strict=True):
        assert datetime.fromisoformat(row["hour_start"]) == datetime.fromisoformat(hour["hour"])
        assert row["unit"] == "kWh" and row["quality"] == hour["quality"]
        assert (float(row["energy"]) if row["energy"] else None) == hour["energy_kwh"]

    # Without the chart library (npm ci never ran) the numbers are all still there.
    bare = page.context.new_page()
    bare.route("**/static/vendor/uplot/**", lambda route: route.abort())
    bare.goto(f"{live_portal.url}/dashboard/devices/{device}?date={AUTUMN}")
    expect(bare.get_by_test_id("day-chart")).to_contain_text("Chart library not installed")
    expect(bare.get_by_test_id("day-table").locator("tbody tr")).to_have_count(25)
    assert (
        bare.get_by_test_id("day-table").locator('[data-field="energy"]').all_inner_texts() == cells
    )
    bare.close()


def portal_subscribed(portal: LivePortal) -> bool:
    with urllib.request.urlopen(f"{portal.url}/health", timeout=2) as response:  # noqa: S310
        return bool(json.load(response).get("events") == "subscribed")


def test_a_published_reading_appears_on_the_open_dashboard_without_a_reload(
    live_portal: LivePortal, broker: BrokerInfo, page: Page, artifacts: Path
) -> None:
    dsn = live_portal.settings.database_url
    owner = add_client(dsn, "erin")
    (device,) = add_devices(dsn, 1, owner_id=owner, max_hourly_kwh=2.0, interval_s=60)
    # create_gateway runs its own event loop: not on this thread, where Playwright's runs.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        user, password = pool.submit(create_gateway, broker).result()
    hub = start_hub(dsn, broker)  # the default live throttle, as deployed
    gateway = Gateway(broker, user, password)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        gateway.publish(
            readings_topic(device),
            encode_reading(Reading(device, now - timedelta(minutes=2), 1000.0)),
        )
        wait_for(lambda: count(dsn, "SELECT count(*) FROM readings") == 1, what="the baseline")
        wait_for(lambda: portal_subscribed(live_portal), what="the portal's event subscription")

        sign_in(page, live_portal, "erin", "erin-password")
        page.goto(f"{live_portal.url}/dashboard")
        card = page.get_by_test_id("device-card")
        expect(card.locator('[data-field="register"]')).to_have_text("1000.000")
        wait_until_live(page)
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        gateway.publish(
            readings_topic(device),
            encode_reading(Reading(device, now, 1001.25, power_w=1234.0)),
        )
        live = {"timeout": 2_000}
        expect(card.locator('[data-field="register"]')).to_have_text("1001.250", **live)
        expect(card.locator('[data-field="power"]')).to_have_text("1234", **live)
        expect(card.locator('[data-field="hour-kwh"]')).to_have_text("1.250", **live)
        expect(card.locator('[data-field="state"]')).to_have_text("online", **live)
        assert page.evaluate("window.__sameDocument") is True
        page.screenshot(path=str(artifacts / "dashboard-client-live.png"), full_page=True)
    finally:
        gateway.close()
        hub.stop()


def _clear_of_midnight(margin: timedelta) -> bool:
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight - now > margin


def test_the_fleet_view_counts_devices_and_links_to_their_views(
    live_portal: LivePortal,
    portal_admin: tuple[str, str],
    browser: Browser,
    page: Page,
    artifacts: Path,
) -> None:
    dsn = live_portal.settings.database_url
    owner = add_client(dsn, "fred")
    devices = add_devices(dsn, 4, owner_id=owner)
    # "Today" is the administrator's (UTC) day when the page is drawn: energy booked to this
    # hour just before midnight would be yesterday's by then. Start clear of the boundary.
    wait_for(lambda: _clear_of_midnight(timedelta(minutes=2)), timeout=150, what="not 23:58")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(dsn) as conn:
        for k, device in enumerate(devices[:3]):
            conn.execute(
                "INSERT INTO hourly_energy (device_id, hour, energy_kwh, quality)"
                " VALUES (%s, %s, %s, 'measured')",
                (device, hour, 1.5 * (k + 1)),
            )
        for device, state in (
            (devices[0], "online"),
            (devices[1], "online"),
            (devices[2], "offline"),
        ):
            conn.execute(
                "INSERT INTO device_status (device_id, state, since) VALUES (%s, %s, now())",
                (device, state),
            )
        conn.execute(  # 120 readings in the last minute: 2.0 a second
            "INSERT INTO readings (device_id, ts, energy_kwh)"
            " SELECT %s, now() - k * interval '0.4 s', 1000 - k FROM generate_series(0, 119) k",
            (devices[0],),
        )
        conn.execute(
            "INSERT INTO alerts (device_id, user_id, kind) VALUES (%s, %s, 'offline')",
            (devices[2], owner),
        )
    sign_in(page, live_portal, *portal_admin)
    page.get_by_role("link", name="Fleet").click()
    expect(page.get_by_test_id("online")).to_have_text("2")
    expect(page.get_by_test_id("offline")).to_have_text("1")
    expect(page.get_by_test_id("unknown")).to_have_text("1")
    expect(page.get_by_test_id("open-alerts")).to_have_text("1")
    expect(page.get_by_test_id("readings-per-s")).to_have_text("2.0")
    top = page.get_by_test_id("top-consumers").locator("tbody tr")
    expect(top).to_have_count(3)
    expect(top.first).to_contain_text("meter 2")  # the largest today first
    expect(top.first).to_contain_text("4.500")
    page.screenshot(path=str(artifacts / "dashboard-fleet.png"), full_page=True)

    top.first.get_by_role("link", name="meter 2").click()
    expect(page).to_have_url(f"{live_portal.url}/dashboard/devices/{devices[2]}")
    expect(page.get_by_test_id("day-table").locator("tbody tr")).to_have_count(24, timeout=10_000)

    other = browser.new_context().new_page()
    sign_in(other, live_portal, "fred", "fred-password")
    other.goto(f"{live_portal.url}/admin/fleet")
    expect(other).to_have_url(f"{live_portal.url}/devices")  # clients are sent home
    other.context.close()
