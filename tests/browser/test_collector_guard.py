"""The collector's guards, in a real headless Chromium: the page works with a write key,
and a page of another site cannot reset the collector."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import CollectorHandle, run_in_background
from tests.collector.helpers import batch, message, post

TIMEOUT_MS = 10_000
KEY = "browser-write-key"

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture
def keyed() -> Iterator[CollectorHandle]:
    with run_in_background(write_key=KEY) as handle:
        yield handle


def test_the_page_works_with_the_write_key_and_is_closed_without_it(
    browser: Any, keyed: CollectorHandle
) -> None:
    post(keyed.url, batch(message("page", name="Pricing")), auth=(KEY, ""))

    stranger = browser.new_context()
    try:
        # Headless Chromium cannot show the password prompt: the navigation fails.
        with pytest.raises(sync_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            stranger.new_page().goto(keyed.url + "/")
        assert stranger.request.get(keyed.url + "/collector/events").status == 401
    finally:
        stranger.close()

    context = browser.new_context(http_credentials={"username": KEY, "password": ""})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", lambda dialog: dialog.accept())  # the Reset button confirms
        page.goto(keyed.url + "/")
        expect(page.locator(".ev", has_text="Pricing")).to_be_visible()
        expect(page.locator("#live")).to_have_text("live")
        # Sent after the page loaded: it arrives over the stream, which needs the key too.
        post(keyed.url, batch(message("track", event="Live Checkout")), auth=(KEY, ""))
        expect(page.locator(".ev", has_text="Live Checkout")).to_be_visible()
        page.click("#reset")
        expect(page.locator(".ev")).to_have_count(0)
        assert keyed.summary()["total"] == 0
    finally:
        context.close()


@pytest.fixture
def other_site(segment_collector: CollectorHandle) -> Iterator[str]:
    """A page on another origin that posts to the collector's reset route on load."""
    action = f"{segment_collector.url}/collector/reset"
    html = (
        f'<!doctype html><form id=f method=post action="{action}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_a_page_of_another_site_cannot_reset_the_collector(
    browser: Any, segment_collector: CollectorHandle, other_site: str
) -> None:
    post(segment_collector.url, batch(message()))
    context = browser.new_context()
    try:
        page = context.new_page()
        with page.expect_response(lambda r: r.url.endswith("/collector/reset")) as answer:
            page.goto(other_site)
        assert answer.value.status == 403
    finally:
        context.close()
    assert segment_collector.summary()["total"] == 1
