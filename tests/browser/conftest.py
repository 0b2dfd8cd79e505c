"""Headless Chromium for the browser tests, cut off from everything but loopback.

Debian's ``chromium`` is used (``scripts/install-system-deps``), never a browser
downloaded by ``playwright install``. Every request to a host other than loopback
goes to a dead proxy and fails: the tests never reach the network, and a test
that cares can see the attempt in Playwright's request events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import CollectorHandle, run_in_background

CHROMIUM = "/usr/bin/chromium"
# Nothing listens on the discard port: a request that is not for loopback (which
# Chromium never sends through a proxy) fails with ERR_PROXY_CONNECTION_FAILED.
DEAD_PROXY = "http://127.0.0.1:9"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--proxy-server={DEAD_PROXY}",
]


# Module scope, not session: while Playwright's sync API runs, the main thread has a
# running event loop, and the other directories' asyncio tests would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module; each test opens its own context."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: scripts/install-system-deps installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def collector_server() -> Iterator[CollectorHandle]:
    """One collector for a module's tests (a module may define its own)."""
    with run_in_background() as handle:
        yield handle


@pytest.fixture
def collector(collector_server: CollectorHandle) -> CollectorHandle:
    """The module's collector, emptied for the test."""
    collector_server.reset()
    return collector_server
