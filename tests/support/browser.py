"""The real browser for the web page tests: Debian's chromium driven by Playwright, offline.

Needs /usr/bin/chromium (`.ci/install-browser` installs it); never `playwright install`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1100, "height": 760}}

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent "
                                    "(run .ci/install-browser: apt-get install chromium)")


@contextmanager
def launched() -> Iterator[Any]:
    """Debian's chromium, headless (a test module's fixture holds it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


def offline_page(browser, url: str, **options):
    """A new page on which every request outside `url` is refused and recorded in `page.outside`, and
    every script error recorded in `page.errors`."""
    page = browser.new_page(**options)
    page.outside, page.errors = [], []

    def route(r):
        if r.request.url.startswith(url):
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


def screenshot(page, name: str) -> None:
    """A test artifact: test-artifacts/NAME (gitignored), after the page's short animations."""
    page.wait_for_timeout(400)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
