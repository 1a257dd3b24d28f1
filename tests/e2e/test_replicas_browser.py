"""`ems up --replicas 2` in real browsers: a client and an administrator on different portal
replicas behind nginx get each other's alerts and chat live; when the client's portal stops,
the page reconnects through nginx to the other one by itself and misses no message."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import Gateway, create_gateway
from devkit.stackkit import (
    ADMIN_PASSWORD,
    StackPorts,
    child_pid,
    kill_stack,
    read_until,
    stack_broker,
    stack_dsn,
    start_stack,
    stop_stack,
)
from tests.e2e.pagestate import REALTIME_OPEN
from tests.e2e.test_alert_toast import CLIENT, CLIENT_PASSWORD, add_client_with_device

# Before any page script: remember the replica each "ready" message names (the portal sends
# one first on every socket), so the test knows which portal serves each page. The page's
# modules publish nothing on window, so this listens on the WebSocket class they construct.
RECORD_REPLICAS = """
(() => {
  window.__replicas = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        let msg;
        try { msg = JSON.parse(event.data); } catch { return; }
        if (msg && msg.type === "ready") window.__replicas.push(msg.replica);
      });
    }
  };
})();
"""


@contextmanager
def signed_in(
    browser: Browser, base: str, username: str, password: str, *, clock: bool = False
) -> Iterator[Page]:
    """A browser context of its own, signed in through the proxy. ``clock``: the test can
    pause the page's timers (they run as usual until it does)."""
    context = browser.new_context(viewport={"width": 1100, "height": 850})
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_REPLICAS)
    if clock:
        context.clock.install()
    try:
        page = context.new_page()
        page.goto(f"{base}/login")
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("who")).to_be_visible()
        yield page
    finally:
        context.close()


def open_live(page: Page, url: str) -> str:
    """Go to ``url`` and wait for its socket: the replica that serves it."""
    page.goto(url)
    page.wait_for_function(f"() => window.__replicas.length > 0 && {REALTIME_OPEN}")
    return str(page.evaluate("window.__replicas.at(-1)"))


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")
    expect(page.get_by_test_id("message").last.locator(".body")).to_have_text(text)


def test_alerts_and_chat_across_replicas_survive_the_loss_of_a_portal(
    services_dir: Path, browser: Browser, artifacts: Path
) -> None:
    home = services_dir / ("failover-" + os.urandom(4).hex())
    ports = StackPorts.free(replicas=2)
    proc = start_stack(home, ports, "--replicas", "2", admin_password=ADMIN_PASSWORD)
    gateway: Gateway | None = None
    try:
        read_until(proc, "Press Ctrl-C", timeout=90)
        proxy = ports.portal_url
        device = add_client_with_device(stack_dsn(home, ports))
        broker = stack_broker(home, ports)
        # Playwright's sync API owns this thread's event loop: asyncio.run goes to another thread.
        with ThreadPoolExecutor(1) as pool:
            gateway = Gateway(broker, *pool.submit(create_gateway, broker).result())

        with (
            signed_in(browser, proxy, CLIENT, CLIENT_PASSWORD, clock=True) as client,
            signed_in(browser, proxy, "admin", ADMIN_PASSWORD) as admin,
        ):
            # The client opens the chat first (that creates the conversation the inbox lists),
            # then the administrator, until nginx has put them on different replicas.
            client_replica = open_live(client, f"{proxy}/chat")
            admin_replica = open_live(admin, f"{proxy}/admin/chat")
            for _ in range(10):
                if admin_replica != client_replica:
                    break
                # One more request through nginx shifts its round robin for the next socket.
                admin.evaluate("fetch('/health').then((r) => r.status)")
                admin_replica = open_live(admin, f"{proxy}/admin/chat")
            assert {client_replica, admin_replica} == {"portal-1", "portal-2"}
            client.evaluate("window.__sameDocument = true")
            admin.evaluate("window.__sameDocument = true")

            # Alerts: a reading over the limit reaches the client's toast on one replica and
            # the administrator's bell on the other.
            expect(admin.get_by_test_id("bell-count")).to_be_hidden()
            now = datetime.now(UTC).replace(microsecond=0)
            for ts, energy in ((now - timedelta(minutes=2), 100.0), (now, 102.4)):
                gateway.publish(readings_topic(device), encode_reading(Reading(device, ts, energy)))
            gateway.flush()
            toast = client.get_by_test_id("toast").first
            expect(toast).to_contain_text("Hourly limit exceeded")
            expect(toast).to_contain_text("Device 'Kitchen' used")
            expect(admin.get_by_test_id("bell-count")).to_have_text(re.compile(r"^[1-9]"))

            # Chat across replicas, both ways.
            send(client, "Hello from the client")
            entry = admin.get_by_test_id("conversations").get_by_role("link", name="Carol")
            expect(entry.get_by_test_id("unread")).to_have_text("1")
            entry.click()
            expect(admin.get_by_test_id("message").last.locator(".body")).to_have_text(
                "Hello from the client"
            )
            send(admin, "Support here, hello")
            expect(client.get_by_test_id("message").last.locator(".body")).to_have_text(
                "Support here, hello"
            )

            # Failover. Pause the client page's timers, so its reconnection waits until the
            # test lets it go: whatever is said before then is said during the outage.
            client.clock.pause_at(client.evaluate("Date.now()") / 1000 + 1)  # seconds
            portal = child_pid(home, f"PORTAL_INSTANCE_ID={client_replica}")
            os.kill(portal, signal.SIGTERM)
            client.wait_for_function(f"() => !({REALTIME_OPEN})")
            wait_for(
                lambda: not Path(f"/proc/{portal}").exists(),
                timeout=15,
                what=f"{client_replica} to exit",
            )
            send(admin, "Sent while you were away")
            expect(client.get_by_test_id("message")).to_have_count(2)  # nothing arrived live

            client.clock.resume()
            client.wait_for_function(f"() => window.__replicas.length === 2 && {REALTIME_OPEN}")
            assert client.evaluate("window.__replicas") == [client_replica, admin_replica]
            send(admin, "And after you came back")
            bodies = client.get_by_test_id("message").locator(".body")
            said = [
                "Hello from the client",
                "Support here, hello",
                "Sent while you were away",
                "And after you came back",
            ]
            expect(bodies).to_have_text(said)  # each once, in order
            expect(admin.get_by_test_id("message").locator(".body")).to_have_text(said)
            assert client.evaluate("window.__sameDocument") is True  # no reload
            assert admin.evaluate("window.__sameDocument") is True
            assert admin.evaluate("window.__replicas") == [admin_replica]  # never disconnected
            client.screenshot(path=str(artifacts / "replicas-failover-client.png"), full_page=True)
            admin.screenshot(path=str(artifacts / "replicas-failover-admin.png"), full_page=True)

        gateway.close()
        gateway = None
        stop_stack(proc, home, timeout=60, exited=[client_replica])
    finally:
        if gateway is not None:
            gateway.close()
        kill_stack(proc)
