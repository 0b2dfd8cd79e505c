"""What analytics.js reports of a page whose URL holds secrets, beside the server.

Headless Chromium runs Segment's analytics-next, loaded by the snippet of
``snippet_apps/page_fields_site.py`` (``page_source="browser"``): a page's canonical
link, which analytics.js reports in place of the address bar's path and URL, and the
campaign it reads from the query, carry none of the secrets the server redacts;
with ``collect_ip`` off or ``anonymize_ip`` on, the browser's events carry the
address the server's would.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from segment_core.collector import CollectorHandle
from tests.browser._harness import AJS_BUNDLE, AJS_BUNDLE_DIR, BUNDLES_PATH, AppServer, serve_cdn

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 15_000
WAIT_SECONDS = 15.0
ANALYTICS_READY = "() => window.analytics && window.analytics.initialized === true"
SECRETS = ("SECRETTOKEN", "SECRETKEY")
#: A campaign link whose content is a URL with a secret in its query.
RESET_LINK = "https://shop.example/reset?token=SECRETTOKEN"
CAMPAIGN_QUERY = f"?utm_source=mail&utm_content={quote(RESET_LINK, safe='')}"


@pytest.fixture(scope="module")
def cdn_url(collector_server: CollectorHandle) -> Iterator[str]:
    if not (AJS_BUNDLE_DIR / AJS_BUNDLE).is_file():
        pytest.skip(f"{AJS_BUNDLE_DIR / AJS_BUNDLE} is absent: run scripts/install-js")
    with serve_cdn(collector_server.url, {}) as url:
        yield url


@contextlib.contextmanager
def running_site(
    collector: CollectorHandle, cdn_url: str, data_dir: Path, **env: str
) -> Iterator[AppServer]:
    """``page_fields_site``, with ``env`` (its ``SNIPPET_*`` options) added."""
    label = data_dir.name
    site_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_")},
        "SEGMENT_WRITE_KEY": f"server-{label}",
        "SEGMENT_HOST": collector.url,
        "SNIPPET_BROWSER_KEY": f"browser-{label}",
        "SNIPPET_SRC": f"{cdn_url}{BUNDLES_PATH}{AJS_BUNDLE}",
        "SNIPPET_CDN": cdn_url,
        "SNIPPET_PAGE_SOURCE": "browser",
        **env,
    }
    target = "tests.browser.snippet_apps.page_fields_site"
    server = AppServer(target, data_dir, site_env, data_dir / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(
    collector_server: CollectorHandle, cdn_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("page-fields")
    with running_site(collector_server, cdn_url, data_dir) as server:
        yield server


def visit(browser: Any, server: AppServer, collector: CollectorHandle, path: str) -> Any:
    """Open ``path`` and track one event there: the page call's and the track's
    messages, as the collector got them."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        with delivered(page, collector, "/v1/p"):
            response = page.goto(server.url + path)
        assert response is not None and response.status == 200
        page.wait_for_function(ANALYTICS_READY)
        with delivered(page, collector, "/v1/t"):
            page.evaluate("() => analytics.track('Browser Event')")
    finally:
        context.close()
    server.flush()
    events = collector.wait_for(2, timeout=WAIT_SECONDS)
    assert [e["reasons"] for e in events if e["status"] != "good"] == []
    messages = {e["message"]["type"]: e["message"] for e in events}
    assert sorted(messages) == ["page", "track"], events
    return messages["page"], messages["track"]


@contextlib.contextmanager
def delivered(page: Any, collector: CollectorHandle, route: str) -> Iterator[None]:
    """Wait until the browser's post to ``route`` on the collector has been answered."""
    url = collector.url + route
    with page.expect_request_finished(lambda request: request.url == url) as finished:
        yield
    response = finished.value.response()
    assert response is not None and response.status == 200, f"{url}: {response}"


def page_of(message: dict[str, Any]) -> dict[str, str]:
    page: dict[str, str] = message["context"]["page"]
    return {name: page[name] for name in ("path", "search", "url") if name in page}


@pytest.mark.parametrize(
    ("path", "path_sent", "search_sent"),
    [
        # The canonical link drops the utm_* parameters and keeps the token.
        (
            "/confirm?token=SECRETTOKEN&utm_source=mail",
            "/confirm",
            "?token=REDACTED&utm_source=mail",
        ),
        # ... adds a query to a secret route segment,
        ("/invite/SECRETKEY", "/invite/REDACTED", ""),
        # ... names the page with a trailing slash, relative to the page.
        ("/join/SECRETKEY", "/join/REDACTED", ""),
    ],
    ids=["query", "route-and-query", "relative-trailing-slash"],
)
def test_a_canonical_link_reports_the_page_as_the_server_redacted_it(
    browser: Any,
    site: AppServer,
    collector: CollectorHandle,
    path: str,
    path_sent: str,
    search_sent: str,
) -> None:
    page_call, track = visit(browser, site, collector, path)
    redacted = {"path": path_sent, "search": search_sent, "url": site.url + path_sent + search_sent}
    assert page_of(page_call) == redacted
    assert {name: page_call["properties"][name] for name in redacted} == redacted
    assert page_of(track) == redacted
    assert not any(secret in str([page_call, track]) for secret in SECRETS)


def test_a_canonical_link_of_a_page_without_secrets_is_analytics_js_own(
    browser: Any, site: AppServer, collector: CollectorHandle
) -> None:
    page_call, track = visit(browser, site, collector, "/about")
    canonical = {"path": "/about-us", "search": "", "url": site.url + "/about-us"}
    assert page_of(page_call) == page_of(track) == canonical


def test_the_campaign_carries_the_servers_redacted_values(
    browser: Any, site: AppServer, collector: CollectorHandle
) -> None:
    page_call, track = visit(browser, site, collector, "/" + CAMPAIGN_QUERY)
    campaign = {"source": "mail", "content": "https://shop.example/reset?token=REDACTED"}
    assert page_call["context"]["campaign"] == track["context"]["campaign"] == campaign
    assert not any(secret in str([page_call, track]) for secret in SECRETS)
    # A campaign without secrets is analytics.js's own.
    page_call, track = visit(browser, site, collector, "/?utm_source=mail&utm_term=shoes")
    campaign = {"source": "mail", "term": "shoes"}
    assert page_call["context"]["campaign"] == track["context"]["campaign"] == campaign


@pytest.mark.parametrize(
    ("query", "campaign"),
    [
        # A parameter whose name holds "utm_" without starting with it.
        ("?my_utm_token=SECRETTOKEN", {"tm_token": "REDACTED"}),
        # A "?" inside the query, which analytics.js reads as "&".
        ("?a=b?utm_token=SECRETTOKEN", {"token": "REDACTED"}),
        # A nested query left unescaped, which the server escapes as it redacts it.
        ("?next=/w?utm_email=SECRETKEY%40x.com", {}),
    ],
    ids=["utm-inside-a-name", "question-mark", "nested-query"],
)
def test_the_campaign_analytics_js_reads_otherwise_than_the_server_carries_no_secret(
    browser: Any, site: AppServer, collector: CollectorHandle, query: str, campaign: dict[str, str]
) -> None:
    page_call, track = visit(browser, site, collector, "/" + query)
    assert page_call["context"]["campaign"] == track["context"]["campaign"] == campaign
    assert not any(secret in str([page_call, track]) for secret in SECRETS)


@pytest.mark.parametrize(
    ("env", "address"),
    [({"SNIPPET_COLLECT_IP": "0"}, "0.0.0.0"), ({"SNIPPET_ANONYMIZE_IP": "1"}, "127.0.0.0")],
    ids=["collect-ip-off", "anonymize-ip"],
)
def test_the_browsers_events_carry_the_address_the_servers_would(
    browser: Any,
    collector_server: CollectorHandle,
    collector: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str],
    address: str,
) -> None:
    data_dir = tmp_path_factory.mktemp("page-fields-ip")
    with running_site(collector_server, cdn_url, data_dir, **env) as server:
        page_call, track = visit(browser, server, collector, "/")
    assert page_call["context"]["ip"] == track["context"]["ip"] == address
