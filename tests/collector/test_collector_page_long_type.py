"""The live page keeps a long `type` inside its cell, in a real headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import CollectorHandle
from tests.collector.helpers import batch, message, post

CHROMIUM = "/usr/bin/chromium"
# As the browser tests run it: anything but loopback goes to a dead proxy.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--proxy-server=http://127.0.0.1:9"]
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")

# What the page shows just right of the type cell, in the gap before the title.
_RIGHT_OF_THE_TYPE = """
(row) => {
  const type = row.querySelector(".type").getBoundingClientRect();
  return document.elementFromPoint(type.right + 4, type.y + type.height / 2).className;
}
"""


@pytest.fixture
def page() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: scripts/install-system-deps installs it")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def test_a_long_type_stays_inside_its_cell(segment_collector: CollectorHandle, page: Any) -> None:
    long_type = "T" * 3000
    sent = message(long_type, userId="bob")
    assert post(segment_collector.url, batch(sent)).status_code == 200
    page.goto(segment_collector.url + "/")
    row = page.locator(f".ev[data-id='{sent['messageId']}'] .row")
    sync_api.expect(row).to_be_visible()
    assert row.locator(".type").text_content() == long_type  # all of it, clipped
    assert row.evaluate(_RIGHT_OF_THE_TYPE) == "row"  # not "type ...": no text spills over
