"""The analytics.js snippet each adapter renders, run by Segment's own analytics-next.

Headless Chromium visits a small site per framework (``snippet_apps/``): Django
with ``{% segment_snippet %}`` and django-csp, Flask with ``segment_snippet()``
and Flask-Talisman, Starlette with ``segment_snippet(request)`` in
``Jinja2Templates`` and a nonce in ``request.state``. Every page has a strict
Content-Security-Policy (scripts only with the response's nonce). The snippet
loads analytics-next from a stand-in for Segment's CDN (``snippet_src``,
``browser_cdn``) and it sends to the local collector (``browser_api_host``), where
the server's events go too. Nothing leaves loopback.

A visit: the home page, a second page, a login (redirected to a page), the home
page again; on each page the browser tracks an event. Whichever side sends page
views, there is exactly one per navigation; every event of the visit, the
server's and the browser's, carries the server's anonymous id, and the browser's
carry the user id after the login, with no identify call from the browser (and
none of the traits of a user it replaces). A page that also requires Trusted Types
loads analytics.js through the loader's policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from segment_core.collector import CollectorHandle
from segment_core.masking import masked_with_fingerprint
from tests.browser._harness import AJS_BUNDLE, AJS_BUNDLE_DIR, BUNDLES_PATH, AppServer, NetworkLog
from tests.browser._harness import serve_cdn as serve_cdn_for
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 15_000
WAIT_SECONDS = 15.0
ANALYTICS_READY = "() => window.analytics && window.analytics.initialized === true"
# Every CSP violation the page sees, recorded before any of its scripts runs.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

RUNNERS = {
    "django": ("tests.browser.snippet_apps.django_site", "tests.browser._serve"),
    "flask": ("tests.browser.snippet_apps.flask_site", "tests.browser._serve"),
    "starlette": ("tests.browser.snippet_apps.starlette_site:app", "tests.browser._serve_asgi"),
}


@dataclass(frozen=True)
class SiteConfig:
    framework: str
    page_source: str
    #: The server's anonymous-id cookie, when not analytics.js's own name.
    cookie_name: str | None = None
    set_cookie: bool = True
    #: browser_api_host: the collector's URL and this path.
    api_path: str = "/v1"

    @property
    def label(self) -> str:
        extra = f"-{self.cookie_name}" if self.cookie_name else ""
        extra += "" if self.set_cookie else "-no-cookie"
        extra += "" if self.api_path == "/v1" else f"-api{self.api_path.replace('/', '-')}"
        return f"{self.framework}-{self.page_source}{extra}"


CONFIGS = [
    *(SiteConfig(framework, source) for framework in RUNNERS for source in ("server", "browser")),
    # analytics.js cannot read this cookie: only the snippet can hand it the server's id.
    SiteConfig("flask", "server", cookie_name="visitor_id"),
]


@dataclass
class Site:
    config: SiteConfig
    server: AppServer
    server_key: str
    browser_key: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def cookie_name(self) -> str:
        return self.config.cookie_name or "ajs_anonymous_id"


@pytest.fixture(scope="module")
def cdn_url(collector_server: CollectorHandle) -> Iterator[str]:
    if not (AJS_BUNDLE_DIR / AJS_BUNDLE).is_file():
        pytest.skip(f"{AJS_BUNDLE_DIR / AJS_BUNDLE} is absent: run scripts/install-js")
    with serve_cdn_for(collector_server.url, {}) as url:
        yield url


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda config: config.label)
def site(
    request: pytest.FixtureRequest,
    collector_server: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    with running_site(request.param, collector_server, cdn_url, tmp_path_factory) as site:
        yield site


@contextlib.contextmanager
def running_site(
    config: SiteConfig,
    collector_server: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    target: str | None = None,
) -> Iterator[Site]:
    """The site ``config`` names, served; ``target``: another app of its framework's."""
    default_target, runner = RUNNERS[config.framework]
    target = target or default_target
    data_dir: Path = tmp_path_factory.mktemp(config.label)
    server_key, browser_key = f"server-{config.label}", f"browser-{config.label}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SEGMENT_", "DJANGO_"))},
        "SEGMENT_WRITE_KEY": server_key,
        "SEGMENT_HOST": collector_server.url,
        "SNIPPET_BROWSER_KEY": browser_key,
        "SNIPPET_SRC": f"{cdn_url}{BUNDLES_PATH}{AJS_BUNDLE}",
        "SNIPPET_CDN": cdn_url,
        "SNIPPET_PAGE_SOURCE": config.page_source,
        "SNIPPET_COOKIE_NAME": config.cookie_name or "",
        "SNIPPET_SET_COOKIE": "1" if config.set_cookie else "0",
        "SNIPPET_API_HOST": collector_server.url + config.api_path,
        "SNIPPET_DATA_DIR": str(data_dir),
    }
    server = AppServer(target, data_dir, env, data_dir / "server.log", runner=runner)
    try:
        yield Site(config, server, server_key, browser_key)
    finally:
        server.stop()


class Visit:
    """One visitor's browser context on a site, recording what the browser reports."""

    def __init__(
        self,
        browser: Any,
        site: Site,
        collector: CollectorHandle,
        *,
        base_url: str | None = None,
        **context: Any,
    ):
        self.site = site
        #: Where the site is visited: its own URL, or another name of its host.
        self.base_url = base_url or site.url
        self.collector = collector
        self.context = browser.new_context(**context)
        self.context.add_init_script(RECORD_VIOLATIONS)
        self.network = NetworkLog(self.context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.violations: list[str] = []
        #: The headers and HTML of each page loaded.
        self.responses: list[tuple[dict[str, str], str]] = []

    def close(self) -> None:
        self.context.close()

    @contextlib.contextmanager
    def delivered(self, route: str) -> Iterator[None]:
        """Wait until the browser's post to ``route`` on the collector has been answered."""
        url = self.collector.url + route
        with self.page.expect_request_finished(lambda request: request.url == url) as finished:
            yield
        response = finished.value.response()
        assert response is not None and response.status == 200, f"{url}: {response}"

    def navigate(self, path: str) -> None:
        """Open ``path`` (following redirects), wait for analytics.js, track one event."""
        if self.site.config.page_source == "browser":
            with self.delivered("/v1/p"):
                response = self.page.goto(self.base_url + path)
        else:
            response = self.page.goto(self.base_url + path)
        assert response is not None and response.status == 200
        self.responses.append((response.headers, response.text()))
        self.page.wait_for_function(ANALYTICS_READY)
        with self.delivered("/v1/t"):
            self.page.evaluate("() => analytics.track('Browser Event', {at: location.pathname})")
        self.violations += self.page.evaluate("() => window.__violations")

    def cookie(self, name: str) -> str | None:
        values = self.cookies(name)
        return values[0] if values else None

    def cookies(self, name: str) -> list[str]:
        """The values of every cookie ``name`` the page's URL gets (of any domain)."""
        return [c["value"] for c in self.context.cookies(self.base_url) if c["name"] == name]

    def track(self, label: str) -> None:
        with self.delivered("/v1/t"):
            self.page.evaluate("(at) => analytics.track('Browser Event', {at})", label)


def from_browser(event: dict[str, Any]) -> bool:
    library = event["message"].get("context", {}).get("library", {})
    return bool(library.get("name") == "analytics.js")


def describe(events: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{'browser' if from_browser(e) else 'server'} {e['message']['type']} "
        f"{e['message'].get('event') or e['message'].get('properties', {}).get('path')} "
        f"anonymousId={e['message'].get('anonymousId')} userId={e['message'].get('userId')}"
        for e in events
    )


def settle(site: Site, collector: CollectorHandle, count: int) -> list[dict[str, Any]]:
    """Every event of the visit: exactly ``count``, all valid."""
    site.server.flush()
    events = collector.wait_for(count, timeout=WAIT_SECONDS)
    assert len(events) == count, describe(events)
    assert [e["reasons"] for e in events if e["status"] != "good"] == []
    return events


@pytest.fixture
def visit(browser: Any, site: Site, collector: CollectorHandle) -> Iterator[Visit]:
    visit = Visit(browser, site, collector)
    try:
        yield visit
    finally:
        visit.close()


Visiting = Callable[..., contextlib.AbstractContextManager[Visit]]


@pytest.fixture
def visiting(
    browser: Any,
    collector_server: CollectorHandle,
    collector: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Visiting:
    """``visiting(config, target=None)``: one visitor on a site of its own, served
    while the block runs (``visit.site``)."""

    @contextlib.contextmanager
    def visit_site(config: SiteConfig, *, target: str | None = None) -> Iterator[Visit]:
        with running_site(
            config, collector_server, cdn_url, tmp_path_factory, target=target
        ) as site:
            visit = Visit(browser, site, collector)
            try:
                yield visit
            finally:
                visit.close()

    return visit_site


def test_one_visitor_one_page_view_per_navigation(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    visit.navigate("/")
    server_id = visit.cookie(site.cookie_name)
    assert server_id is not None
    # analytics.js took the server's id on the very first response.
    assert visit.page.evaluate("() => analytics.user().anonymousId()") == server_id
    visit.navigate("/about")
    visit.navigate("/login")  # logs in, then redirects to /about
    assert visit.page.url == site.url + "/about"
    visit.navigate("/")
    # Another user logs in on the same browser: analytics.js follows, same visitor.
    visit.navigate("/login?as=u-43")
    visit.navigate("/")

    events = settle(site, collector, 6 + 6 + 2)  # page views, browser tracks, the logins
    messages = [e["message"] for e in events]
    assert {m.get("anonymousId") for m in messages} == {server_id}, describe(events)

    # Exactly one page view per navigation, from the side page_source names.
    pages = [e for e in events if e["message"]["type"] == "page"]
    sides = {"browser" if from_browser(e) else "server" for e in pages}
    assert sides == {site.config.page_source}, describe(events)
    paths = Counter(e["message"]["properties"]["path"] for e in pages)
    assert paths == Counter({"/": 3, "/about": 3}), describe(events)

    # The server identified each user once; the browser never did, yet knows them.
    identifies = [e for e in events if e["message"]["type"] == "identify"]
    assert not any(from_browser(e) for e in identifies), describe(events)
    user_id, other_id = (e["message"]["userId"] for e in identifies)
    assert user_id != other_id
    tracks = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert [(t["properties"]["at"], t.get("userId")) for t in tracks] == [
        ("/", None),
        ("/about", None),
        ("/about", user_id),
        ("/", user_id),
        ("/about", other_id),
        ("/", other_id),
    ]
    # Each side with its own write key: the browser never sees the server's.
    # The collector stores each key masked, with a fingerprint that tells them apart.
    browser_key, server_key = (
        masked_with_fingerprint(k) for k in (site.browser_key, site.server_key)
    )
    assert {e["writeKey"] for e in events if from_browser(e)} == {browser_key}
    assert {e["writeKey"] for e in events if not from_browser(e)} == {server_key}
    assert all(site.server_key not in html for _, html in visit.responses)

    # A strict CSP with a nonce: the snippet and the library it loads run, nothing is refused.
    for headers, html in visit.responses:
        policy = headers["content-security-policy"]
        assert re.search(r"script-src\s+'nonce-[^']+'$|script-src\s+'nonce-[^']+';", policy)
        assert "unsafe-inline" not in policy and "strict-dynamic" not in policy
        assert "<script nonce=" in html
    assert visit.violations == []
    assert visit.network.console_errors == []
    assert visit.network.outside_loopback() == []


def test_a_gpc_visitor_gets_an_inert_stub(
    browser: Any, site: Site, collector: CollectorHandle
) -> None:
    visit = Visit(browser, site, collector, extra_http_headers={"Sec-GPC": "1"})
    errors: list[str] = []
    visit.page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        response = visit.page.goto(site.url + "/")
        assert response is not None and response.status == 200
        assert "writeKey" not in response.text() and "anonymousId" not in response.text()
        # The page's own calls (analytics.reset() at logout) run, and do nothing.
        visit.page.evaluate("() => { analytics.reset(); analytics.track('Signed out'); }")
        visit.page.goto(site.url + "/about")
        assert visit.page.evaluate("() => typeof analytics.reset") == "function"
        assert errors == [] and visit.page.evaluate("() => window.__violations") == []
        assert visit.context.cookies(site.url) == []
        assert [url for url in visit.network.requests if not url.startswith(site.url)] == []
        site.server.flush()
        assert collector.events() == []
    finally:
        visit.close()


def test_secrets_in_the_pages_url_and_referrer_reach_neither_side(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    secret_page = "/about?email=ann%40example.com&token=S3CR3T&tab=1"
    referrer = site.url + "/?token=FROM-REFERRER"
    if site.config.page_source == "browser":
        with visit.delivered("/v1/p"):
            visit.page.goto(site.url + secret_page, referer=referrer)
    else:
        visit.page.goto(site.url + secret_page, referer=referrer)
    visit.page.wait_for_function(ANALYTICS_READY)
    assert visit.page.evaluate("() => document.referrer") == referrer
    with visit.delivered("/v1/t"):
        visit.page.evaluate("() => analytics.track('Browser Event', {at: 'here'})")
    # A single-page app moves on: its new page keeps its own path and query.
    visit.page.evaluate("() => history.pushState({}, '', '/about?step=2')")
    with visit.delivered("/v1/t"):
        visit.page.evaluate("() => analytics.track('Browser Event', {at: 'moved'})")

    events = settle(site, collector, 3)
    assert not any(
        secret in str(e["message"]) for e in events for secret in ("S3CR3T", "ann%40", "FROM-")
    ), describe(events)
    redacted = {
        "path": "/about",
        "search": "?email=REDACTED&token=REDACTED&tab=1",
        "url": site.url + "/about?email=REDACTED&token=REDACTED&tab=1",
        "referrer": site.url + "/?token=REDACTED",
    }
    [page] = [e["message"] for e in events if e["message"]["type"] == "page"]
    assert {k: page["properties"][k] for k in redacted} == redacted
    here, moved = (
        e["message"]["context"]["page"] for e in events if e["message"]["type"] == "track"
    )
    assert {k: here[k] for k in redacted} == redacted
    assert {k: moved[k] for k in redacted} == {
        "path": "/about",
        "search": "?step=2",
        "url": site.url + "/about?step=2",
        "referrer": redacted["referrer"],
    }
    assert visit.violations == [] and visit.network.console_errors == []


#: A visitor's id in a cookie for the whole domain, as analytics.js's own defaults
#: write it (from a page of the site that loads it without the server's snippet).
DOMAIN_VISITOR = "11111111-2222-4333-8444-555555555555"


def test_analytics_reset_starts_one_new_visitor_on_both_sides(
    browser: Any, site: Site, collector: CollectorHandle
) -> None:
    # The site on another name of its host, below a domain a cookie can be set for.
    base_url = site.url.replace("127.0.0.1", "www.shop.localhost")
    visit = Visit(browser, site, collector, base_url=base_url)
    try:
        visit.context.add_cookies(
            [{"name": "ajs_anonymous_id", "value": DOMAIN_VISITOR, "domain": ".shop.localhost",
              "path": "/"}]
        )  # fmt: skip
        visit.navigate("/")
        visit.page.evaluate("() => analytics.reset()")  # at logout, as the README says
        visit.track("reset")
        new_id = visit.page.evaluate("() => analytics.user().anonymousId()")
        visit.navigate("/about")
        # No cookie of either name holds an old id: analytics.js's, the server's.
        assert set(visit.cookies("ajs_anonymous_id") + visit.cookies(site.cookie_name)) == {new_id}
        events = settle(site, collector, 2 + 3)  # page views, tracks
    finally:
        visit.close()
    before = {e["message"]["anonymousId"] for e in events if at_path(e) == "/"}
    after = {e["message"]["anonymousId"] for e in events if at_path(e) in ("reset", "/about")}
    assert after == {new_id}, describe(events)
    assert not before & after and DOMAIN_VISITOR not in after, describe(events)


#: The page's own identify in the browser: the traits it sent, once delivered.
IDENTIFY = "(args) => analytics.identify(...args).then((context) => context.event.traits)"
STORED_TRAITS = "() => analytics.user().traits()"
STORED_USER = "() => analytics.user().id()"


def test_a_user_who_replaces_another_starts_without_their_traits(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    # As analytics.js's own identify does: the traits the page gave the visitor carry
    # over to the user who logs in; a user's do not carry over to the next one.
    visit.navigate("/")
    with visit.delivered("/v1/i"):
        assert visit.page.evaluate(IDENTIFY, [{"plan": "free"}]) == {"plan": "free"}
    visit.navigate("/login")  # logged in as the first user
    first_user = visit.page.evaluate(STORED_USER)
    assert visit.page.evaluate(STORED_TRAITS) == {"plan": "free"}
    with visit.delivered("/v1/i"):
        first = visit.page.evaluate(IDENTIFY, [first_user, {"email": "ann@example.com"}])
    assert first == {"plan": "free", "email": "ann@example.com"}
    # Another user logs in on the same browser, with no logout in between (a session
    # that ended on its own).
    visit.navigate("/login?as=u-43")
    second_user = visit.page.evaluate(STORED_USER)
    assert second_user not in (None, first_user)
    assert visit.page.evaluate(STORED_TRAITS) == {}
    with visit.delivered("/v1/i"):
        second = visit.page.evaluate(IDENTIFY, [second_user, {"name": "Bo"}])
    assert second == {"name": "Bo"}

    events = settle(site, collector, 3 + 3 + 2 + 3)  # page views, tracks, logins, identifies
    sent = [
        (e["message"].get("userId"), e["message"].get("traits"))
        for e in events
        if from_browser(e) and e["message"]["type"] == "identify"
    ]
    assert sent == [
        (None, {"plan": "free"}),
        (first_user, {"plan": "free", "email": "ann@example.com"}),
        (second_user, {"name": "Bo"}),
    ], describe(events)
    assert visit.violations == [] and visit.network.console_errors == []


def test_a_user_logged_in_elsewhere_gets_none_of_the_traits_another_left_here(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    # A subdomain of the cookie's domain whose server knows no user: its localStorage
    # still holds the user who logged out on another subdomain, and their traits; the
    # shared cookie names the user who logged in there since.
    visit.navigate("/login?as=u-43")
    user = visit.page.evaluate(STORED_USER)
    assert user not in (None, "u-41")
    visit.context.clear_cookies(name="session")
    visit.page.evaluate(
        """() => {
          localStorage.setItem("ajs_user_id", JSON.stringify("u-41"));
          localStorage.setItem("ajs_user_traits", JSON.stringify({email: "ann@example.com"}));
        }"""
    )
    visit.navigate("/about")
    assert visit.page.evaluate(STORED_USER) == user
    assert visit.page.evaluate(STORED_TRAITS) == {}
    with visit.delivered("/v1/i"):
        assert visit.page.evaluate(IDENTIFY, [{"plan": "pro"}]) == {"plan": "pro"}
    events = settle(site, collector, 2 + 2 + 1 + 1)  # page views, tracks, identifies
    identifies = [e["message"] for e in events if e["message"]["type"] == "identify"]
    assert [(i["userId"], i.get("traits", {}).get("email")) for i in identifies] == [
        (user, None),
        (user, None),
    ], describe(events)
    assert visit.violations == [] and visit.network.console_errors == []


def at_path(event: dict[str, Any]) -> str | None:
    """The path of a page call, or where a browser event was tracked."""
    properties: dict[str, Any] = event["message"].get("properties", {})
    where = properties.get("at") if event["message"]["type"] == "track" else properties.get("path")
    return where if isinstance(where, str) else None


PREFETCH_ABOUT = """() => {
  const rules = document.createElement("script");
  rules.type = "speculationrules";
  rules.textContent = JSON.stringify({prefetch: [{source: "list", urls: ["/about"]}]});
  document.head.append(rules);
}"""


def test_a_prefetched_page_is_counted_once_when_shown(
    browser: Any, site: Site, collector: CollectorHandle
) -> None:
    # bypass_csp: the test's own speculation rules, added without the page's nonce.
    visit = Visit(browser, site, collector, bypass_csp=True)
    try:
        visit.navigate("/")
        about = site.url + "/about"
        try:
            with visit.page.expect_request_finished(
                lambda request: request.url == about, timeout=15_000
            ):
                visit.page.evaluate(PREFETCH_ABOUT)
        except Exception as error:  # playwright's TimeoutError
            if "Timeout" not in type(error).__name__:
                raise
            # Chromium's speculation rules may decline a prefetch (memory, load).
            pytest.skip("Chromium made no prefetch of /about")
        with visit.delivered("/v1/p"):
            visit.page.click("#about")
        visit.page.wait_for_function(ANALYTICS_READY)
        # Shown from the prefetch: the server never heard of this navigation.
        delivery = "() => performance.getEntriesByType('navigation')[0].deliveryType"
        assert visit.page.evaluate(delivery) == "navigational-prefetch"
        visitor = visit.cookie(site.cookie_name)
        events = settle(site, collector, 2 + 1)  # page views, the first page's track
    finally:
        visit.close()
    pages = [e for e in events if e["message"]["type"] == "page"]
    assert sorted(e["message"]["properties"]["path"] for e in pages) == ["/", "/about"]
    [prefetched] = [e["message"] for e in pages if e["message"]["properties"]["path"] == "/about"]
    assert prefetched["properties"]["url"] == about
    assert {e["message"]["anonymousId"] for e in events} == {visitor}


def test_a_fragment_cache_hands_no_visitor_anothers_ids(
    browser: Any, site: Site, collector: CollectorHandle
) -> None:
    if site.config.framework != "django":
        pytest.skip("Django's {% cache %} fragment")
    first = Visit(browser, site, collector)
    second = Visit(browser, site, collector)
    try:
        first.navigate("/login")  # logged in, then at /about
        first.navigate("/fragment")  # the head is kept with this visitor's ids
        first_id = first.cookie(site.cookie_name)
        second.navigate("/fragment")  # a new visitor: the server's cookie names it
        second_id = second.cookie(site.cookie_name)
        user = "() => [analytics.user().anonymousId(), analytics.user().id()]"
        assert second.page.evaluate(user) == [second_id, None]
        assert first.cookie(site.cookie_name) == first_id
        events = settle(site, collector, 3 + 3 + 1)  # page views, tracks, the login's identify
    finally:
        first.close()
        second.close()
    assert second_id is not None and second_id != first_id
    ids = Counter((e["message"]["anonymousId"], e["message"].get("userId")) for e in events)
    [(_, user_id)] = [key for key in ids if key[0] == first_id]
    assert user_id is not None  # the logged-in user, on all of the first visitor's events
    assert ids == {(first_id, user_id): 5, (second_id, None): 2}, describe(events)


def test_an_xhtml_page_loads_analytics_js(
    visit: Visit, site: Site, collector: CollectorHandle
) -> None:
    if site.config.framework != "flask":
        pytest.skip("the Flask site's /xhtml page")
    visit.navigate("/xhtml")
    assert visit.page.evaluate("() => document.getElementById('title').textContent") == "XHTML"
    events = settle(site, collector, 2)  # the page view, the track
    assert {e["message"]["anonymousId"] for e in events} == {visit.cookie(site.cookie_name)}
    assert visit.violations == [] and visit.network.console_errors == []


def test_with_no_cookie_to_keep_it_analytics_js_keeps_its_own_visitor(
    visiting: Visiting,
    collector: CollectorHandle,
) -> None:
    # set_cookie off and a cookie name of the server's own: the server's id of each
    # request is gone at the next, and analytics.js's own must not be replaced by it.
    config = SiteConfig("flask", "server", cookie_name="visitor_id", set_cookie=False)
    with visiting(config) as visit:
        site = visit.site
        for path in ("/", "/about", "/"):
            visit.navigate(path)
        browser_id = visit.page.evaluate("() => analytics.user().anonymousId()")
        assert visit.cookies("visitor_id") == []
        assert visit.cookies("ajs_anonymous_id") == [browser_id]
        events = settle(site, collector, 3 + 3)  # the server's page views, tracks
    tracks = [e["message"] for e in events if from_browser(e)]
    assert {t["anonymousId"] for t in tracks} == {browser_id}, describe(events)


def ids_both_sides_give(visiting: Visiting, collector: CollectorHandle, value: str) -> set[str]:
    """The anonymous ids of two page views' server and browser events, for a visitor
    holding ``value`` as its ``ajs_anonymous_id`` (with set_cookie off, analytics.js
    must not keep one the server takes for none while the server makes a new visitor
    at each request)."""
    config = SiteConfig("flask", "server", set_cookie=False)
    with visiting(config) as visit:
        site = visit.site
        visit.context.add_cookies([{"name": "ajs_anonymous_id", "value": value, "url": site.url}])
        for path in ("/", "/about"):
            visit.navigate(path)
        events = settle(site, collector, 2 + 2)  # the server's page views, tracks
    found = {e["message"]["anonymousId"] for e in events}
    assert len(found) == 1, describe(events)
    return found


@pytest.mark.parametrize(
    "value", ["a%E2%80%8Bb-1234", "abc%C2%ADdef", "caf\u00e9-1", "%20abc-1234", "%C2%A0abc-1234"]
)
def test_an_id_cookie_the_server_takes_for_none_the_browser_takes_for_none_too(
    visiting: Visiting,
    collector: CollectorHandle,
    value: str,
) -> None:
    # A format character (U+200B, a soft hyphen), an encoded space at an end or raw
    # non-ASCII: no id to the server; both take the server's first new one.
    [found] = ids_both_sides_give(visiting, collector, value)
    assert str(uuid.UUID(found)) == found  # one the server made


@pytest.mark.parametrize("value", ["%22abc-1234%22%20", "%22abc-1234%22%0A", "%22abc-1234%22"])
def test_an_id_cookie_analytics_js_reads_as_json_is_the_same_id_on_both_sides(
    visiting: Visiting,
    collector: CollectorHandle,
    value: str,
) -> None:
    # JSON.parse reads whitespace after the closing quote as JSON's own: the id is
    # the one inside the quotes, to the server as to analytics.js.
    assert ids_both_sides_give(visiting, collector, value) == {"abc-1234"}


def test_a_user_id_of_a_64_bit_number_reaches_analytics_js_unchanged(
    visiting: Visiting,
    collector: CollectorHandle,
) -> None:
    # analytics.js reads the ids it stores as JSON: this one would come back as
    # 1789012345678901200, another user, whose traits the next page would drop.
    user_id = "1789012345678901234"
    config = SiteConfig("flask", "server")
    with visiting(config) as visit:
        site = visit.site
        visit.navigate("/")
        with visit.delivered("/v1/i"):
            visit.page.evaluate(IDENTIFY, [{"plan": "free"}])
        visit.navigate(f"/login?as={user_id}")
        visit.navigate("/about")
        assert visit.page.evaluate(STORED_USER) == user_id
        assert visit.page.evaluate(STORED_TRAITS) == {"plan": "free"}
        # A page whose server knows no user (the session ended): analytics.js keeps
        # the user its cookie names, unchanged; also where localStorage holds none
        # (another subdomain of the cookie's domain).
        visit.context.clear_cookies(name="session")
        visit.page.evaluate("() => localStorage.clear()")
        visit.navigate("/")
        assert visit.page.evaluate(STORED_USER) == user_id
        # Nor where localStorage still holds the user before: the cookie's is the one.
        before = json.dumps("1789012345678900001")
        visit.page.evaluate(f"() => localStorage.setItem('ajs_user_id', {before!r})")
        visit.navigate("/about")
        assert visit.page.evaluate(STORED_USER) == user_id
        assert visit.cookies("ajs_user_id") == [user_id]
        # A logout in another tab (its page calls analytics.reset()): this tab's
        # next event names no user, and writes none back.
        other = visit.context.new_page()
        other.set_default_timeout(TIMEOUT_MS)
        other.goto(site.url + "/signed-out")
        other.wait_for_function(f"() => ({ANALYTICS_READY})() && !analytics.user().id()")
        visit.track("after a logout elsewhere")
        assert visit.page.evaluate(STORED_USER) is None
        assert visit.cookies("ajs_user_id") == []
        # page views, tracks, the server's identify at login, the page's identify
        events = settle(site, collector, 6 + 6 + 1 + 1)
    tracks = [e["message"] for e in events if from_browser(e) and e["message"]["type"] == "track"]
    users = [t.get("userId") for t in tracks]
    assert users == [None, user_id, user_id, user_id, user_id, None], describe(events)
    assert visit.violations == [] and visit.network.console_errors == []


@pytest.mark.parametrize("cookie_name", [None, "visitor_id"])
def test_an_anonymous_id_of_a_big_number_reaches_analytics_js_unchanged(
    visiting: Visiting,
    collector: CollectorHandle,
    cookie_name: str | None,
) -> None:
    # analytics.js reads its cookies as JSON: this id would come back from one as
    # 12345678901234567000, another visitor. In its own cookie, the id is no id to
    # either side (both take the server's new one); in a cookie of the app's own, it
    # stays the visitor's on both sides.
    value = "12345678901234567890"
    config = SiteConfig("flask", "server", cookie_name=cookie_name)
    with visiting(config) as visit:
        site = visit.site
        visit.context.add_cookies([{"name": site.cookie_name, "value": value, "url": site.url}])
        for path in ("/", "/about", "/"):
            visit.navigate(path)
        browser_id = visit.page.evaluate("() => analytics.user().anonymousId()")
        events = settle(site, collector, 3 + 3)  # the server's page views, tracks
    assert {e["message"]["anonymousId"] for e in events} == {browser_id}, describe(events)
    assert (browser_id == value) is (cookie_name is not None)
    assert browser_id != "12345678901234567000"


def test_a_links_ajs_parameters_name_no_visitor_user_or_event(
    visiting: Visiting,
    browser: Any,
    collector: CollectorHandle,
) -> None:
    # analytics.js's query string API would let whoever sends the link choose the
    # visitor's ids and send events in their name (on a page whose policy lets
    # analytics.js load the code that reads them).
    forged = "?ajs_aid=forged-anon-1234&ajs_uid=victim-999&ajs_event=Order%20Completed"
    config = SiteConfig("flask", "server")
    with visiting(config) as visit:
        site = visit.site
        visit.navigate("/login")  # a signed-in user, redirected to /about
        visit.navigate("/open" + forged + "&ajs_prop_revenue=1000")
        # analytics.js would act on them once a chunk of its own has loaded.
        visit.page.wait_for_load_state("networkidle")
        visit.navigate("/about")
        server_id = visit.cookie(site.cookie_name)
        # page views, browser tracks, the login's identify
        events = settle(site, collector, 3 + 3 + 1)
    messages = [e["message"] for e in events]
    assert {m["anonymousId"] for m in messages} == {server_id}, describe(events)
    assert not any(m.get("userId") == "victim-999" for m in messages), describe(events)
    assert [m["event"] for m in messages if m["type"] == "track"] == ["Browser Event"] * 3


def test_a_browser_that_blocks_cookies_sends_the_servers_visitor_from_memory(
    browser: Any,
    collector_server: CollectorHandle,
    collector: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Chromium's "Block cookies" for a site keeps navigator.cookieEnabled true, drops
    # every cookie written and makes localStorage throw: analytics.js keeps the ids in
    # its memory, else its events carry no id at all and are refused.
    profile = tmp_path_factory.mktemp("cookies-blocked")
    (profile / "Default").mkdir()
    blocked = {"profile": {"default_content_setting_values": {"cookies": 2}}}
    (profile / "Default" / "Preferences").write_text(json.dumps(blocked))
    config = SiteConfig("flask", "server")
    with running_site(config, collector_server, cdn_url, tmp_path_factory) as site:
        context = browser.browser_type.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
        )
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            for path in ("/", "/about"):
                assert page.goto(site.url + path).status == 200
                page.wait_for_function(ANALYTICS_READY)
                assert page.evaluate("() => document.cookie") == ""
                with page.expect_request_finished(
                    lambda request: request.url == collector.url + "/v1/t"
                ):
                    page.evaluate("(at) => analytics.track('Browser Event', {at})", path)
            events = settle(site, collector, 2 + 2)  # page views (new visitors), tracks
        finally:
            context.close()
    by_path: dict[str, set[str]] = {}
    for event in events:
        message = event["message"]
        at = message["properties"].get("at") or message["properties"].get("path")
        by_path.setdefault(at, set()).add(message["anonymousId"])
    # Each page: the server's visitor on both sides (a new one each time, no cookie).
    assert [len(ids) for ids in by_path.values()] == [1, 1], describe(events)


def test_an_api_host_given_as_the_servers_host_reaches_the_collector(
    visiting: Visiting,
    browser: Any,
    collector: CollectorHandle,
) -> None:
    # browser_api_host as the server's host is given: a base URL, without /v1.
    config = SiteConfig("flask", "server", api_path="")
    with visiting(config) as visit:
        site = visit.site
        visit.navigate("/")  # its track goes to /v1/t
        settle(site, collector, 1 + 1)  # the server's page view, the browser's track
    assert visit.network.failed_to(collector.url) == []


def test_under_trusted_types_analytics_js_loads_through_the_loaders_policy(
    visiting: Visiting,
    browser: Any,
    collector: CollectorHandle,
) -> None:
    # require-trusted-types-for 'script': a script's URL must be a TrustedScriptURL.
    config = SiteConfig("flask", "server")
    target = "tests.browser.snippet_apps.trusted_types_site"
    with visiting(config, target=target) as visit:
        site = visit.site
        visit.navigate("/")
        [(headers, _)] = visit.responses
        policy = headers["content-security-policy"]
        assert "require-trusted-types-for 'script'" in policy
        assert "trusted-types segment-web" in policy
        visitor = visit.cookie(site.cookie_name)
        events = settle(site, collector, 1 + 1)  # the server's page view, the track
    assert {e["message"]["anonymousId"] for e in events} == {visitor}
    assert visit.violations == [] and visit.network.console_errors == []
