"""What the browser tests read of a page's state, without reaching into its scripts.

The portal's scripts are ES modules that publish nothing on ``window``; realtime.js mirrors
its socket's state on ``<html data-realtime="connecting|open|closed|signed-out">``.
"""

from __future__ import annotations

from playwright.sync_api import Page

REALTIME_OPEN = "document.documentElement.dataset.realtime === 'open'"


def wait_until_live(page: Page) -> None:
    """Until the page's realtime socket is open: what is published from now on reaches it."""
    page.wait_for_function(f"() => {REALTIME_OPEN}")
