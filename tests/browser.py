"""Headless Chromium for the tests: Debian's ``chromium`` driven by Playwright (which cannot download its
own browser here), started with the flags that keep it off the network."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio")
"""Without the background-networking flags Chromium tries Google's hosts at start (refused here)."""

SCREENSHOTS = Path(__file__).resolve().parents[1] / "outputs" / "test-screenshots"
"""Where browser tests leave their screenshots (``outputs/`` is git-ignored)."""


def chromium_path() -> str:
    """Debian's Chromium, or a failure saying how to install it (``make test`` does)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("the browser tests need Debian's chromium: `apt-get install -y chromium` (make test installs it)")
    return found


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A Playwright page in a fresh headless Chromium; the browser is closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            # generous waits: CI machines are loaded (two cores, servers and a flow run beside the browser)
            page.set_default_timeout(60_000)
            page.set_default_navigation_timeout(120_000)
            yield page
        finally:
            browser.close()
