"""Shared by the browser tests: a headless Chromium page on the live app that fails the test on any page error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM


@contextmanager
def chromium_page(url: str, height: int = 1000) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": height}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url)
        yield page
        assert not errors, errors
        browser.close()


@pytest.fixture(scope="module")
def shots(artifacts_dir):
    """The folder screenshots go to (test-artifacts/screenshots)."""
    folder = artifacts_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
