"""Headless Chromium (Debian's `chromium` package) driven by Playwright, against the console the gateway serves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from services.devstack.stack import Endpoints, LocalStack
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS


@pytest.fixture(scope="session")
def console_url(local_stack: LocalStack, stack: Endpoints) -> str:
    """The console's address; fails (not skips) when it was not built before the stack started."""
    index = local_stack.config.static_root / "console" / "index.html"
    if not index.is_file():
        pytest.fail(f"{index} is missing: build the console first (make console)")
    return f"{stack.gateway_url}/console/"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the browser tests, closed after them; never downloaded (Debian's build is launched)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium (make browser-deps)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (its own sessionStorage) per test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
