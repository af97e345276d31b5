"""Debian's Chromium driven by Playwright, for the browser tests (`playwright install` cannot
download a browser on these machines; `.ci/run` installs Chromium with apt)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> None:
    """Skip the calling test module without Chromium; under CI a missing one is a failure."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; .ci/run installs it (apt-get install chromium)")
    pytest.skip("Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium for the whole of a module (the sync API, started and stopped here:
    pytest-playwright's fixtures leave a loop running that breaks the async tests after them)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()
