"""The snippet in a site that Turbo Drive or htmx (``hx-boost``) navigates.

Such a visit replaces the page without a new document: Turbo runs the new page's
snippet in the document analytics.js already runs in (unless a nonce-only
Content-Security-Policy stops it), htmx runs no script of the new page's
``<head>``. Whichever side sends page views, there is exactly one per visit; the
browser's events on each page carry that page's fields as the server redacted
them, and the user id of a login made through a visit.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from segment_core.collector import CollectorHandle
from segment_core.masking import masked_with_fingerprint
from tests.browser._harness import (
    AJS_BUNDLE,
    AJS_BUNDLE_DIR,
    BUNDLES_PATH,
    AppServer,
    NetworkLog,
    serve_cdn,
)
from tests.browser.snippet_apps.common import FRAGMENT, NAVIGATION_LIBRARIES, USER_ID

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 15_000
WAIT_SECONDS = 15.0
ANALYTICS_READY = "() => window.analytics && window.analytics.initialized === true"
# Set in the first page: still there after a visit that kept the document, which
# counts the visits the library has finished showing.
MARK_DOCUMENT = """() => {
  window.firstDocument = true;
  window.visitsShown = 0;
  for (const type of ["turbo:load", "htmx:afterSettle"]) {
    document.addEventListener(type, () => { window.visitsShown += 1; });
  }
}"""
SAME_DOCUMENT = "() => window.firstDocument === true"
SECRETS = ("SECRETKEY", "SECRETTOKEN")
SOURCES = ("server", "browser")
# What the browser says when Turbo adds a later page's inline snippet to a document
# whose policy allows the first page's nonce only.
TURBO_REFUSED = "Executing inline script violates the following Content Security Policy"


@pytest.fixture(scope="module")
def cdn_url(collector_server: CollectorHandle) -> Iterator[str]:
    if not (AJS_BUNDLE_DIR / AJS_BUNDLE).is_file():
        pytest.skip(f"{AJS_BUNDLE_DIR / AJS_BUNDLE} is absent: run scripts/install-js")
    missing = [str(path) for path in NAVIGATION_LIBRARIES.values() if not path.is_file()]
    if missing:
        pytest.skip(f"{missing} absent: run scripts/install-js")
    with serve_cdn(collector_server.url, {}) as url:
        yield url


@contextlib.contextmanager
def running_site(
    config: SiteConfig, collector: CollectorHandle, cdn_url: str, data_dir: Path
) -> Iterator[AppServer]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_")},
        "SEGMENT_WRITE_KEY": f"server-{config.label}",
        "SEGMENT_HOST": collector.url,
        "SNIPPET_BROWSER_KEY": f"browser-{config.label}",
        "SNIPPET_SRC": f"{cdn_url}{BUNDLES_PATH}{AJS_BUNDLE}",
        "SNIPPET_CDN": cdn_url,
        "SNIPPET_PAGE_SOURCE": config.page_source,
        "SNIPPET_NAVIGATION": config.library,
        "SNIPPET_CSP": "1" if config.csp else "0",
    }
    target = "tests.browser.snippet_apps.navigation_site"
    server = AppServer(target, data_dir, env, data_dir / "server.log")
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class SiteConfig:
    library: str
    page_source: str
    csp: bool = False

    @property
    def label(self) -> str:
        return f"{self.library}-{self.page_source}{'-csp' if self.csp else ''}"


CONFIGS = [
    *(SiteConfig(library, source) for library in ("turbo", "htmx") for source in SOURCES),
    *(SiteConfig("turbo", source, csp=True) for source in SOURCES),
]


@dataclass
class Site:
    config: SiteConfig
    server: AppServer


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda config: config.label)
def site(
    request: pytest.FixtureRequest,
    collector_server: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp(request.param.label)
    with running_site(request.param, collector_server, cdn_url, data_dir) as server:
        yield Site(request.param, server)


class Visit:
    """One browser context on the site; each step waits for analytics.js's deliveries."""

    def __init__(
        self, browser: Any, server: AppServer, collector: CollectorHandle, **context: Any
    ) -> None:
        self.server = server
        self.collector = collector
        self.context = browser.new_context(**context)
        self.network = NetworkLog(self.context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)

    def open(self, path: str) -> None:
        response = self.page.goto(self.server.url + path)
        assert response is not None and response.status == 200
        self.page.wait_for_function(ANALYTICS_READY)
        self.page.evaluate(MARK_DOCUMENT)

    def open_untracked(self, path: str) -> None:
        """A page with the inert stub: analytics.js does not start."""
        response = self.page.goto(self.server.url + path)
        assert response is not None and response.status == 200
        self.page.evaluate(MARK_DOCUMENT)

    def click(self, link: str, title: str) -> None:
        """Follow a link; the library shows the page in the same document."""
        shown = self.page.evaluate("() => window.visitsShown")
        self.page.click(f"#{link}")
        self.page.wait_for_function(
            "([title, shown]) => document.getElementById('title').textContent === title"
            " && window.visitsShown > shown",
            arg=[title, shown],
        )
        assert self.page.evaluate(SAME_DOCUMENT), "the page was loaded as a new document"

    def track(self, label: str) -> None:
        url = self.collector.url + "/v1/t"
        with self.page.expect_request_finished(lambda request: request.url == url):
            self.page.evaluate("(at) => analytics.track('Browser Event', {at})", label)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, site: Site, collector: CollectorHandle) -> Iterator[Visit]:
    visit = Visit(browser, site.server, collector)
    try:
        yield visit
    finally:
        visit.close()


def describe(events: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(e["message"], sort_keys=True) for e in events)


def from_browser(event: dict[str, Any]) -> bool:
    return bool(event["message"]["context"].get("library", {}).get("name") == "analytics.js")


def settle(server: AppServer, collector: CollectorHandle, count: int) -> list[dict[str, Any]]:
    """Every event of the visit: exactly ``count``, all valid."""
    server.flush()
    events = collector.wait_for(count, timeout=WAIT_SECONDS)
    assert len(events) == count, describe(events)
    assert [e["reasons"] for e in events if e["status"] != "good"] == []
    return events


def test_each_visit_is_one_page_view_with_the_servers_redacted_fields(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    page_source, server = site.config.page_source, site.server
    visit.open("/")
    visit.click("invite", "Invite")
    visit.track("invite")
    visit.click("login", "About")  # logs in, then redirects to /about
    visit.track("login")
    visit.page.go_back()  # shown again from the library's copy: no request, no page view
    visit.page.wait_for_function("() => document.getElementById('title').textContent === 'Invite'")
    visit.track("back")
    visit.click("home", "Home")
    visit.track("home")

    events = settle(server, collector, 4 + 1 + 4)  # page views, the login's identify, tracks
    assert not any(secret in describe(events) for secret in SECRETS), describe(events)
    pages = [e for e in events if e["message"]["type"] == "page"]
    assert {"browser" if from_browser(e) else "server" for e in pages} == {page_source}
    paths = Counter(e["message"]["properties"]["path"] for e in pages)
    assert paths == Counter({"/": 2, "/invite/REDACTED": 1, "/about": 1}), describe(events)

    invite = {
        "path": "/invite/REDACTED",
        "search": "?token=REDACTED&tab=1",
        "url": server.url + "/invite/REDACTED?token=REDACTED&tab=1",
    }
    about = {"path": "/about", "search": "", "url": server.url + "/about"}
    home = {"path": "/", "search": "", "url": server.url + "/"}
    tracks = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert [
        (t["properties"]["at"], {k: t["context"]["page"].get(k) for k in invite}, t.get("userId"))
        for t in tracks
    ] == [
        ("invite", invite, None),
        ("login", about, USER_ID),
        ("back", invite, USER_ID),
        ("home", home, USER_ID),
    ]
    refused = [e for e in visit.network.console_errors if e.startswith(TURBO_REFUSED)]
    assert site.config.csp or not refused
    assert [e for e in visit.network.console_errors if e not in refused] == []


def test_a_logout_through_a_visit_forgets_the_user(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    # No analytics.reset() on the page the logout leads to: under a nonce-only policy
    # Turbo could not run it anyway.
    visit.open("/")
    visit.click("login", "About")  # logs in, then redirects to /about
    visit.track("logged in")
    visit.click("logout", "Home")  # logs out, then redirects to /
    visit.track("logged out")
    events = settle(site.server, collector, 3 + 1 + 2)  # page views, the identify, tracks
    tracks = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert [(t["properties"]["at"], t.get("userId")) for t in tracks] == [
        ("logged in", USER_ID),
        ("logged out", None),
    ], describe(events)
    assert tracks[0]["anonymousId"] == tracks[1]["anonymousId"], describe(events)


def test_a_page_htmx_fetches_again_on_back_is_handed_over(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.library != "htmx":
        pytest.skip("htmx's history cache")
    visit.open("/in-body/")
    # htmx keeps no copy of a page: back fetches it again, and runs its body's snippet.
    visit.page.evaluate("() => { htmx.config.historyCacheSize = 0; }")
    visit.click("about", "About")
    shown = visit.page.evaluate("() => window.visitsShown")
    visit.page.go_back()
    visit.page.wait_for_function(
        "([shown]) => document.getElementById('title').textContent === 'Home'"
        " && window.visitsShown > shown",
        arg=[shown],
    )
    visit.track("back")
    events = settle(site.server, collector, 2 + 1)  # page views (none for back), the track
    paths = [e["message"]["properties"]["path"] for e in events if e["message"]["type"] == "page"]
    assert paths == ["/in-body/", "/in-body/about"], describe(events)
    [track] = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert track["context"]["page"]["path"] == "/in-body/", describe(events)
    assert visit.network.console_errors == []


def test_a_pushed_url_without_the_servers_fields_is_not_sent(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    server = site.server
    if site.config.library != "htmx":
        pytest.skip("htmx's hx-push-url")
    visit.open("/")
    visit.click("fragment", "Fragment")  # a piece of a page, at a URL of its own
    assert visit.page.evaluate("() => location.pathname + location.search") == FRAGMENT
    visit.track("fragment")
    events = settle(server, collector, 1 + 1)  # the first page's view, the track
    assert not any(secret in describe(events) for secret in SECRETS), describe(events)
    [track] = [e["message"] for e in events if e["message"]["type"] == "track"]
    # The server's rules (a route's secret parameter) cannot run in the browser.
    assert not {"path", "search", "url"} & set(track["context"]["page"])


def test_a_page_the_server_does_not_track_sends_nothing_from_the_browser(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    server = site.server
    visit.open("/")
    visit.click("private", "Private")  # an excluded path: the server renders the inert stub
    visit.page.evaluate("() => analytics.track('Browser Event', {at: 'private'})")
    visit.click("home", "Home")
    visit.track("home")
    events = settle(server, collector, 2 + 1)  # page views, the track at home
    tracked_at = [e["message"]["properties"].get("at") for e in events if from_browser(e)]
    assert "private" not in tracked_at and "home" in tracked_at, describe(events)


def test_a_page_inserted_by_the_pages_own_script_is_no_visit(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.csp:
        pytest.skip("the inserting script has no nonce")
    visit.open("/inserting")
    visit.page.click("#insert")  # the invite page's markup, its snippet run and removed
    visit.page.wait_for_function("() => window.inserted === true")
    visit.track("inserting")
    events = settle(site.server, collector, 1 + 1)  # the page's view, the track
    [page_view] = [e["message"] for e in events if e["message"]["type"] == "page"]
    assert page_view["properties"]["path"] == "/inserting", describe(events)
    [track] = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert track["context"]["page"]["path"] == "/inserting", describe(events)
    assert visit.network.console_errors == ["Segment snippet included twice."]


def test_a_visit_turbo_prefetched_on_hover_is_one_page_view(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.library != "turbo":
        pytest.skip("Turbo's hover prefetch")
    visit.open("/prefetching")
    with visit.page.expect_request_finished(
        lambda request: (
            request.url.endswith("/about") and request.headers.get("x-sec-purpose") == "prefetch"
        )
    ):
        visit.page.hover("#about")
    visit.click("about", "About")  # shown from the prefetch: no second request
    events = settle(site.server, collector, 2)
    paths = [e["message"]["properties"]["path"] for e in events]
    assert sorted(paths) == ["/about", "/prefetching"], describe(events)


def test_a_turbo_visit_from_a_page_the_server_does_not_track_starts_analytics_js(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.library != "turbo" or site.config.csp:
        pytest.skip("htmx runs no snippet of a visit's head, nor Turbo one the policy refuses")
    response = visit.page.goto(site.server.url + "/private")  # the inert stub
    assert response is not None and response.status == 200
    visit.page.evaluate(MARK_DOCUMENT)
    visit.click("home", "Home")
    visit.page.wait_for_function(ANALYTICS_READY)
    visit.track("home")
    visit.click("about", "About")
    events = settle(site.server, collector, 2 + 1)  # page views, the track at home
    paths = [e["message"]["properties"]["path"] for e in events if e["message"]["type"] == "page"]
    assert paths == ["/", "/about"], describe(events)
    [track] = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert track["context"]["page"]["path"] == "/", describe(events)


def test_a_page_with_another_browser_key_is_loaded_as_a_document_of_its_own(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    visit.open("/")
    visit.page.click("#other")
    visit.page.wait_for_function(
        # Polled in the new document too, before its body is parsed.
        "() => document.getElementById('title')?.textContent === 'Other'"
        " && window.firstDocument === undefined"
    )
    visit.page.wait_for_function(ANALYTICS_READY)
    visit.track("other")
    # With "server", the visit's request and the load are both page views.
    count = 1 + (2 if site.config.page_source == "server" else 1) + 1
    events = settle(site.server, collector, count)
    other_key = masked_with_fingerprint(f"browser-{site.config.label}-other")
    [track] = [e for e in events if e["message"]["type"] == "track"]
    assert track["writeKey"] == other_key, describe(events)
    browser_pages = [e for e in events if from_browser(e) and e["message"]["type"] == "page"]
    assert [e["writeKey"] == other_key for e in browser_pages] == (
        [False, True] if site.config.page_source == "browser" else []
    ), describe(events)


def test_a_turbo_frame_that_advances_the_url_is_no_page_view(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.library != "turbo":
        pytest.skip("Turbo Frames")
    visit.open("/framing")
    visit.page.click("#advance")  # the frame shows the invite page's, at its URL
    visit.page.wait_for_function(
        "() => document.getElementById('framed').textContent === 'Invite'"
        " && location.pathname.startsWith('/invite/') && window.visitsShown > 0"
    )
    visit.track("advanced")
    events = settle(site.server, collector, 1 + 1)  # the page's view, the track
    assert not any(secret in describe(events) for secret in SECRETS), describe(events)
    [page_view] = [e["message"] for e in events if e["message"]["type"] == "page"]
    assert page_view["properties"]["path"] == "/framing", describe(events)
    [track] = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert track["context"]["page"]["path"] == "/invite/REDACTED", describe(events)


def test_a_visit_to_the_url_a_turbo_frame_showed_is_a_page_view(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.library != "turbo":
        pytest.skip("Turbo Frames")
    visit.open("/framing")
    visit.page.evaluate(
        "() => document.addEventListener('turbo:frame-load', () => { window.frameLoaded = true; })"
    )
    visit.page.click("#in-frame")  # the frame alone shows /about's; the URL stays
    visit.page.wait_for_function("() => window.frameLoaded === true")
    assert visit.page.evaluate("() => location.pathname") == "/framing"
    # A visit that is no link's click (as a form's redirect is) to what the frame showed.
    visit.page.evaluate("(url) => Turbo.visit(url)", site.server.url + "/about")
    visit.page.wait_for_function(
        "() => document.getElementById('title').textContent === 'About' && window.visitsShown > 0"
    )
    visit.track("visited")
    events = settle(site.server, collector, 2 + 1)  # page views, the track
    paths = [e["message"]["properties"]["path"] for e in events if e["message"]["type"] == "page"]
    assert paths == ["/framing", "/about"], describe(events)
    [track] = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert track["context"]["page"]["path"] == "/about", describe(events)


def test_a_visitor_the_server_does_not_track_navigates_without_errors(
    browser: Any, site: Site, collector: CollectorHandle
) -> None:
    # Sec-GPC: every page has the inert stub, here at the end of its body, which
    # Turbo and htmx run on each visit.
    visit = Visit(browser, site.server, collector, extra_http_headers={"Sec-GPC": "1"})
    try:
        visit.open_untracked("/in-body/")
        visit.click("about", "About")
        visit.click("home", "Home")
        assert visit.page.evaluate("() => window.analytics.inert === true")
        settle(site.server, collector, 0)
        errors = visit.network.console_errors
        assert [e for e in errors if not e.startswith(TURBO_REFUSED)] == []
    finally:
        visit.close()


def test_a_visit_from_a_page_the_server_does_not_track_reports_no_error(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    visit.open_untracked("/in-body/private")  # an excluded path: the inert stub
    visit.click("home", "Home")  # the snippet, at the end of the body
    visit.click("about", "About")
    errors = visit.network.console_errors
    assert [e for e in errors if not e.startswith(TURBO_REFUSED)] == []
