"""The dashboard's live card follows each reading, not the rollup's pacing: a meter sends at a
fixed rate and, within a second of each reading, the card's hour total is the API's value for
that hour (issue 15.5). Real broker, hub, database, portal and browser.
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import (
    Gateway,
    add_devices,
    count,
    create_gateway,
    start_hub,
    wait_rolled_up,
)
from devkit.live_portal import LivePortal
from hub.energy import MeterReading, compute_hourly, hour_floor
from tests.conftest import BrokerInfo
from tests.e2e.pagestate import wait_until_live
from tests.e2e.test_dashboards import TZ, add_client, api, portal_subscribed
from tests.e2e.test_portal_admin import sign_in

# A reading every 1.2 s: just slower than the hub's live throttle as deployed (at most one
# event per device a second, HUB_LIVE_MIN_INTERVAL_S), so each reading's event may leave at
# its commit. (A faster meter's events are coalesced to the newest, once a second.)
RATE_S = 1.2
READINGS = 10
WITHIN_S = 1.0

CARD_SHOWS = """([want]) => {
  const el = document.querySelector('[data-testid="device-card"] [data-field="hour-kwh"]');
  return el !== null && el.textContent === want;
}"""


def api_hour(page: Page, portal: LivePortal, device: object, hour: datetime) -> float | None:
    """The API's value for the UTC ``hour`` (from the hourly view of its local day)."""
    day = hour.astimezone(ZoneInfo(TZ)).date().isoformat()
    body: Any = api(page, portal, f"/api/v1/devices/{device}/consumption/hourly?date={day}")
    for h in body["hours"]:
        if datetime.fromisoformat(h["hour"]) == hour:
            return None if h["quality"] == "missing" else float(h["energy_kwh"])
    return None


def test_the_live_card_shows_the_apis_hour_total_within_a_second_of_each_reading(
    live_portal: LivePortal, broker: BrokerInfo, page: Page, artifacts: Path
) -> None:
    dsn = live_portal.settings.database_url
    owner = add_client(dsn, "fay")
    (device,) = add_devices(dsn, 1, owner_id=owner, max_hourly_kwh=50.0, interval_s=2)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # not on Playwright's thread
        user, password = pool.submit(create_gateway, broker).result()
    hub = start_hub(dsn, broker)  # the default live throttle (one event a second), as deployed
    gateway = Gateway(broker, user, password)
    # The meter's own clock, pinned: readings two seconds apart, ending about now (whatever the
    # time of day; an hour that turns meanwhile is followed like any other).
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2 * READINGS)
    series = [MeterReading(t0 + timedelta(seconds=2 * k), 500.0 + 0.25 * k) for k in range(11)]

    def send(k: int) -> None:
        r = series[k]
        reading = Reading(device, r.ts, r.energy_kwh, seq=k, power_w=450.0)
        gateway.publish(readings_topic(device), encode_reading(reading))

    try:
        send(0)  # the baseline, before the page opens
        wait_for(lambda: count(dsn, "SELECT count(*) FROM readings") == 1, what="the baseline")
        wait_rolled_up(dsn)
        wait_for(lambda: portal_subscribed(live_portal), what="the portal's event subscription")
        sign_in(page, live_portal, "fay", "fay-password")
        page.goto(f"{live_portal.url}/dashboard")
        wait_until_live(page)

        pace = threading.Event()  # never set: its wait keeps the meter's rate
        next_at = time.monotonic()
        for k in range(1, READINGS + 1):
            # The workload's fixed rate (not a wait for a condition: those follow).
            pace.wait(max(0.0, next_at - time.monotonic()))
            next_at += RATE_S
            sent = time.monotonic()
            send(k)
            hour = hour_floor(series[k].ts)
            want = compute_hourly(series[: k + 1]).hours[hour].energy_kwh
            try:
                page.wait_for_function(CARD_SHOWS, arg=[f"{want:.3f}"], timeout=WITHIN_S * 1000)
            except PlaywrightTimeout:
                card = page.get_by_test_id("device-card").locator('[data-field="hour-kwh"]')
                raise AssertionError(
                    f"reading {k}: the card shows {card.text_content()} after {WITHIN_S} s,"
                    f" not {want:.3f}"
                ) from None
            shown = time.monotonic() - sent
            from_api = wait_for(
                lambda hour=hour, want=want: (
                    (v := api_hour(page, live_portal, device, hour)) is not None
                    and math.isclose(v, want, abs_tol=1e-9)
                    and v
                ),
                timeout=max(0.05, WITHIN_S - (time.monotonic() - sent)),
                what=f"the API's value for reading {k}",
            )
            assert f"{from_api:.3f}" == f"{want:.3f}", (k, shown)
        page.screenshot(path=str(artifacts / "dashboard-live-card.png"), full_page=True)
    finally:
        gateway.close()
        hub.stop()
