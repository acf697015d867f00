"""Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``) driven by
Playwright, headless. A test that needs it fails when it cannot start: it never skips, and
Playwright never downloads a browser of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Error, sync_playwright

__all__ = ["CHROMIUM", "chromium"]

CHROMIUM = "/usr/bin/chromium"
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the test, closed after it."""
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=_ARGS, headless=True)
        except Error as exc:
            pytest.fail(f"could not start {CHROMIUM} (make test installs it): {exc}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()
