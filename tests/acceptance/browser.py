"""Driving Debian's Chromium with Playwright for Python: no browser download.

``.ci/run`` installs the ``chromium`` package; Playwright is pointed at its binary
with ``executable_path``. Without it the browser tests skip, unless
``VIDGATE_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = Path(os.environ.get("VIDGATE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "playground"


def chromium_or_skip() -> Path:
    """The Chromium binary, or a skip (a failure when the browser is required)."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = (
        f"Debian's Chromium is not installed at {CHROMIUM} "
        "(apt-get install chromium); the playground's browser test needs it"
    )
    if os.environ.get("VIDGATE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and VIDGATE_REQUIRE_BROWSER=1 makes that a failure")
    pytest.skip(f"{reason}; set VIDGATE_REQUIRE_BROWSER=1 to fail instead of skipping")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium (the system one), closed at the end of the block."""
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


class ConsoleWatch:
    """Collects console errors and uncaught exceptions from every page it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page, label: str = "") -> Page:
        prefix = f"[{label}] " if label else ""

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"{prefix}console.error: {message.text} ({message.location})")

        def on_error(error: Error) -> None:
            self.errors.append(f"{prefix}uncaught: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)
        return page


class Screenshots:
    """Numbered screenshots, ``<prefix>-NN-<step>.png`` under ``test-artifacts/playground/``.

    A run first removes its own prefix's pictures from the last run.
    """

    def __init__(self, prefix: str, folder: Path = ARTIFACTS) -> None:
        self.prefix = prefix
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob(f"{prefix}-*.png"):
            old.unlink()
        self.count = 0
        self.taken: list[Path] = []

    def take(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{self.prefix}-{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        self.taken.append(path)
        return path
