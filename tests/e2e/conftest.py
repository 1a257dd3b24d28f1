"""Browser-test fixtures: a live portal and Debian's chromium driven by Playwright.

Never `playwright install`: the browser is the system's chromium. Every test gets its own
browser process and a fresh context (no shared cookies) and page.

The pages run under a Content-Security-Policy without 'unsafe-eval' (portal.security_headers):
give ``wait_for_function`` a function (``"() => …"``), which Playwright compiles once, not a bare
expression, which it passes to eval() at every poll — the page's CSP refuses that.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from devkit.live_portal import LivePortal
from portal.settings import PortalSettings

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_portal(portal_settings: PortalSettings, tmp_path: Path) -> Iterator[LivePortal]:
    """`python -m portal` on a free port, against this test's database and broker."""
    with LivePortal(portal_settings, tmp_path / "portal.log") as portal:
        yield portal


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for this test only.

    Not session-scoped on purpose: while Playwright's sync API is open it keeps an asyncio
    event loop running in the main thread, so every later `asyncio.run()` in the test session
    (simulator, hub and wire tests use it) would fail. A launch costs about a second. Inside a
    browser test, run coroutines in another thread rather than with `asyncio.run()`.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed — run `make install` (never `playwright install`)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (its own cookies) and page; 10 s default timeouts."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
