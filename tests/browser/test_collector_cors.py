"""analytics.js in a page of another origin, posting to the collector with the delivery
options Segment documents: extra headers (which need a CORS preflight) and credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import CollectorHandle, run_in_background
from tests.browser._harness import AJS_BUNDLE, AJS_BUNDLE_DIR, BUNDLES_PATH, NetworkLog, serve_cdn

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 10_000
WAIT_SECONDS = 10.0
ANALYTICS_READY = "() => window.analytics && window.analytics.initialized === true"
BATCHING = {"strategy": "batching", "config": {"size": 2, "timeout": 200}}

#: Segment.io's `deliveryStrategy`, as a page's load options give it, by case name.
DELIVERY = {
    "headers": {"config": {"headers": {"X-Tenant": "acme"}}},
    "headers-batching": {
        **BATCHING,
        "config": {**BATCHING["config"], "headers": {"X-Tenant": "acme"}},
    },
    "credentials": {"config": {"credentials": "include"}},
    "credentials-batching": {
        **BATCHING,
        "config": {**BATCHING["config"], "credentials": "include"},
    },
}


def page_for(case: str) -> str:
    """A page that tracks two events through analytics.js with the case's delivery options."""
    options = {"integrations": {"Segment.io": {"deliveryStrategy": DELIVERY[case]}}}
    return f"""<!doctype html><html><head><script>
  window.analytics = [["track", "{case} 1"], ["track", "{case} 2"]];
  window.analytics._writeKey = "key-{case}";
  window.analytics._cdn = location.origin;
  window.analytics._loadOptions = {json.dumps(options)};
</script><script src="{BUNDLES_PATH}{AJS_BUNDLE}"></script></head><body>{case}</body></html>"""


@pytest.fixture(scope="module")
def collector() -> Iterator[CollectorHandle]:
    with run_in_background() as handle:
        yield handle


@pytest.fixture(scope="module")
def cdn_url(collector: CollectorHandle) -> Iterator[str]:
    if not (AJS_BUNDLE_DIR / AJS_BUNDLE).is_file():
        pytest.skip(f"{AJS_BUNDLE_DIR / AJS_BUNDLE} is absent: run scripts/install-js")
    pages = {f"/{case}.html": page_for(case) for case in DELIVERY}
    with serve_cdn(collector.url, pages) as url:
        yield url


@pytest.mark.parametrize("case", sorted(DELIVERY))
def test_analytics_js_delivers_with_the_documented_delivery_options(
    browser: Any, cdn_url: str, collector: CollectorHandle, case: str
) -> None:
    context = browser.new_context()
    try:
        network = NetworkLog(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{cdn_url}/{case}.html")
        page.wait_for_function(ANALYTICS_READY)
        try:
            events = [
                *collector.wait_for(1, timeout=WAIT_SECONDS, event=f"{case} 1"),
                *collector.wait_for(1, timeout=WAIT_SECONDS, event=f"{case} 2"),
            ]
        except AssertionError:
            page.wait_for_timeout(0)  # lets Playwright deliver the console's messages
            pytest.fail(
                f"analytics.js could not deliver; the browser said: {network.console_errors}"
            )
        assert [e["status"] for e in events] == ["good", "good"]
        assert network.failed_to(collector.url) == []
    finally:
        context.close()


def test_a_page_posting_beside_v1_reads_the_collectors_404(
    browser: Any, cdn_url: str, collector: CollectorHandle
) -> None:
    # analytics.js with an apiHost without /v1 posts to /t: the page sees the answer,
    # not a CORS failure.
    context = browser.new_context()
    try:
        network = NetworkLog(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{cdn_url}/{sorted(DELIVERY)[0]}.html")
        answer = page.evaluate(
            """async (url) => {
              const response = await fetch(url, {method: "POST", body: "{}"});
              return [response.status, (await response.json()).message];
            }""",
            collector.url + "/t",
        )
        assert answer == [404, "there is no route /t; events go to /v1/t"]
        assert network.failed_to(collector.url + "/t") == []
    finally:
        context.close()
