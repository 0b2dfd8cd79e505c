"""Identity joining in a real browser: Segment's own analytics.js and the server agree.

Headless Chromium visits the example apps (``example_projects/``), each served on
loopback in a process of its own. Their pages load analytics-next from npm through
the snippet the adapters render (``snippet_src``), from a stand-in for Segment's
CDN (see ``_harness.py``); the browser and the server send to the same local
collector. Every event of a visit must carry the same ``anonymousId``, whichever
side created it, and after a login both sides must name the same ``userId``, with
no identify from the browser. After a logout, the page it leads to calls
``analytics.reset()``: the browser names no user, and the next login joins a new
visitor. The server sends the page views (``page_source`` "server"): one per
navigation. Nothing leaves loopback.

Three ways a visitor arrives:

(a) on a server-rendered page: the server sets ``ajs_anonymous_id`` and analytics.js
    adopts it;
(b) on a static page where analytics.js runs first (another port of the same host:
    cookies are per host, not per port): the server adopts the browser's id; the
    ``ajs_user_id`` analytics.js wrote is the browser's claim, which the server does
    not take as its user (the apps leave ``user_id_from_cookie`` off);
(c) with cookies in analytics.js "classic" format (``%22<id>%22``): both sides read
    the anonymous id.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import requests

from example_projects._servers import EXAMPLES, Example, _run_setup, app_environment
from example_projects._visits import SHOP_USER
from segment_core.collector import CollectorHandle, run_in_background
from tests.browser._harness import (
    AJS_BUNDLE,
    AJS_BUNDLE_DIR,
    AJS_LIBRARY_NAME,
    BUNDLES_PATH,
    AppServer,
    NetworkLog,
    analytics_next_version,
    serve_cdn,
)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 10_000
WAIT_SECONDS = 10.0
LANDING = "/landing.html"
#: Where analytics-next posts a page call: its short routes on the collector.
PAGE_ROUTE = "/v1/p"
ANALYTICS_READY = "() => window.analytics && window.analytics.initialized === true"

# (side, type, event): what the collector should receive, one entry per message.
Signature = tuple[str, str, str | None]


def landing_page() -> str:
    """A static page on the CDN's origin that runs analytics.js through a minimal snippet."""
    return f"""<!doctype html><html><head><title>Landing</title>
<script>
  window.analytics = [["page"]];  // calls the bundle replays once loaded
  window.analytics._writeKey = new URLSearchParams(location.search).get("writeKey");
  window.analytics._cdn = location.origin;
</script>
<script src="{BUNDLES_PATH}{AJS_BUNDLE}"></script>
</head><body>landing</body></html>"""


class Visitor:
    """One browser context (one visitor's cookies) on an app, and what it should send."""

    def __init__(
        self, context: Any, app: AppServer, write_key: str, collector: CollectorHandle
    ) -> None:
        self.context = context
        self.app = app
        self.write_key = write_key
        self.collector = collector
        self.network = NetworkLog(context)
        self.page = context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.expected: Counter[Signature] = Counter()
        self.cursor = 0

    def open(self, path: str, *, server: tuple[Signature, ...] = ()) -> Any:
        """Load a page of the app: the server's page call and ``server`` calls, the browser's."""
        return self._navigate(lambda: self.page.goto(self.app.url + path), server=server)

    def submit(
        self,
        button: str,
        lands_on: str,
        *,
        server: tuple[Signature, ...] = (),
        counted: bool = True,
    ) -> None:
        """Click a form's ``button``; the app redirects to ``lands_on`` (path and #fragment).

        ``counted``: whether the server counts a page view for the page it lands on (it
        counts none for a page that answers the form's POST itself).
        """
        page_view = "server" if counted else None
        self._navigate(lambda: self.page.click(button), server=server, page_view=page_view)
        self.page.wait_for_url(self.app.url + lands_on)

    def open_landing(self, cdn_url: str) -> None:
        """Load the static landing page, where only analytics.js runs."""
        self._navigate(
            lambda: self.page.goto(f"{cdn_url}{LANDING}?writeKey={self.write_key}"),
            page_view="browser",
        )

    def _navigate(
        self,
        action: Callable[[], Any],
        *,
        server: tuple[Signature, ...] = (),
        page_view: Literal["server", "browser"] | None = "server",
    ) -> Any:
        """``page_view``: the side that sends the page's view, if any."""
        if page_view == "browser":
            # The static landing page's own snippet sends one; it must be delivered
            # before the page is left.
            with self._delivery(PAGE_ROUTE):
                response = action()
        else:
            # The app's pages: the server counts the page view, the snippet does not.
            response = action()
        if page_view is not None:
            self.expected[page_view, "page", None] += 1
        self.page.wait_for_function(ANALYTICS_READY)
        self.expected.update(server)
        return response

    def browser(self, method: str, *args: Any) -> dict[str, Any]:
        """Call ``analytics.<method>(*args)`` in the page; its event, once delivered."""
        # analytics-next posts a call to its type's initial: /v1/t, /v1/i, ...
        with self._delivery(f"/v1/{method[0]}"):
            event: dict[str, Any] = self.page.evaluate(
                "([method, args]) => analytics[method](...args).then(ctx => ctx.event)",
                [method, list(args)],
            )
        self.expected["browser", event["type"], event.get("event")] += 1
        return event

    @contextlib.contextmanager
    def _delivery(self, route: str) -> Iterator[None]:
        """Wait until the browser has posted to ``route`` and read the collector's answer.

        Leaving a page earlier would abort the request (analytics.js would send the
        event again from the next page, from its retry queue).
        """
        url = self.collector.url + route
        with self.page.expect_request_finished(lambda request: request.url == url) as finished:
            yield
        response = finished.value.response()
        assert response is not None and response.status == 200, f"{url}: {response}"

    def cookie(self, name: str) -> str | None:
        values = [c["value"] for c in self.context.cookies(self.app.url) if c["name"] == name]
        assert len(values) <= 1, f"several {name} cookies: {values}"
        return values[0] if values else None

    def settle(self) -> list[dict[str, Any]]:
        """The messages sent since the last call: exactly the ones expected, all valid."""
        self.app.flush()
        count = sum(self.expected.values())
        events = self.collector.wait_for(count, timeout=WAIT_SECONDS, after=self.cursor)
        messages = [event["message"] for event in events]
        assert Counter(map(signature, messages)) == self.expected, describe(messages)
        rejected = [(e["message"]["type"], e["reasons"]) for e in events if e["status"] != "good"]
        assert rejected == [], "the collector found messages against the Spec"
        self.cursor = events[-1]["seq"]
        self.expected.clear()
        return messages

    def assert_stayed_on_loopback(self) -> None:
        assert self.network.outside_loopback() == [], "requests left loopback"
        assert self.network.failed_to(self.collector.url) == [], "sends to the collector failed"


def from_browser(message: dict[str, Any]) -> bool:
    return bool((message.get("context") or {}).get("library", {}).get("name") == AJS_LIBRARY_NAME)


def signature(message: dict[str, Any]) -> Signature:
    side = "browser" if from_browser(message) else "server"
    return side, message["type"], message.get("event")


def describe(messages: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{signature(m)} anonymousId={m.get('anonymousId')} userId={m.get('userId')}"
        for m in messages
    )


def pick(messages: list[dict[str, Any]], side: str, type: str) -> list[dict[str, Any]]:
    return [m for m in messages if signature(m)[:2] == (side, type)]


def identities(messages: list[dict[str, Any]]) -> set[tuple[Any, Any]]:
    """The distinct (anonymousId, userId) pairs; an alias joins its previousId instead."""
    return {
        (m.get("previousId") if m["type"] == "alias" else m.get("anonymousId"), m.get("userId"))
        for m in messages
    }


def assert_page_views_by_the_server(messages: list[dict[str, Any]]) -> None:
    """Page views were counted once each, by the server: analytics.js sent none."""
    assert pick(messages, "browser", "page") == []
    assert pick(messages, "server", "page")


def set_cookies(response: Any) -> str:
    return str(response.header_value("set-cookie") or "")


# How a visitor uses each app: anonymous browsing, logging in (landing on the
# home page), and something done as the user; each records what the app sends.


@dataclass(frozen=True)
class Journey:
    home: str
    browse: Callable[[Visitor], None]
    log_in: Callable[[Visitor], None]
    act_as_user: Callable[[Visitor], None]
    log_out: Callable[[Visitor], None]


def shop_browse(visitor: Visitor) -> None:
    visitor.open("/products/pour-over-kettle/", server=(("server", "track", "Product Viewed"),))
    visitor.submit("main form button", "/cart/", server=(("server", "track", "Product Added"),))


def shop_log_in(visitor: Visitor) -> None:
    visitor.open("/accounts/login/")
    username, password = SHOP_USER
    visitor.page.fill("input[name=username]", username)
    visitor.page.fill("input[name=password]", password)
    visitor.submit("main form button", "/", server=(("server", "identify", None),))


def shop_act_as_user(visitor: Visitor) -> None:
    visitor.open("/products/hand-grinder/", server=(("server", "track", "Product Viewed"),))


def shop_log_out(visitor: Visitor) -> None:
    """Django's LogoutView answers the POST with its page (registration/logged_out.html)."""
    visitor.submit("header form button", "/accounts/logout/", counted=False)


POST = "/posts/one-visitor-two-sides"


def blog_browse(visitor: Visitor) -> None:
    visitor.open(POST)


def blog_log_in(visitor: Visitor) -> None:
    """A new reader signs up (and is logged in): alias, identify and "Signed Up"."""
    visitor.open("/signup")
    username = "reader-" + secrets.token_hex(4)
    visitor.page.fill("input[name=username]", username)
    visitor.page.fill("input[name=email]", f"{username}@example.com")
    visitor.page.fill("input[name=password]", secrets.token_hex(8))
    signed_up = (
        ("server", "alias", None),
        ("server", "identify", None),
        ("server", "track", "Signed Up"),
    )
    visitor.submit("main form button", "/", server=signed_up)


def blog_act_as_user(visitor: Visitor) -> None:
    visitor.open(POST)
    visitor.page.fill("textarea[name=body]", "Both sides agree.")
    posted = (("server", "track", "Comment Posted"),)
    visitor.submit("main form button", POST + "#comments", server=posted)


def blog_log_out(visitor: Visitor) -> None:
    """Redirected to the home page, with a flashed message."""
    visitor.submit("header form button", "/")


JOURNEYS = {
    "django_shop": Journey("/", shop_browse, shop_log_in, shop_act_as_user, shop_log_out),
    "flask_blog": Journey("/", blog_browse, blog_log_in, blog_act_as_user, blog_log_out),
}
# The WSGI examples, as ``example_projects/_servers.py`` defines them for gunicorn.
APPS = {e.name: e for e in EXAMPLES if e.server == "gunicorn" and e.name in JOURNEYS}


@pytest.fixture(scope="module")
def collector_server() -> Iterator[CollectorHandle]:
    with run_in_background() as handle:
        check_speaks_to_browsers(handle.url)
        yield handle


def check_speaks_to_browsers(collector_url: str) -> None:
    """Fail at once, with the reason, when analytics.js could not post to the collector."""
    origin = "http://127.0.0.1:1"
    preflight = requests.options(
        collector_url + PAGE_ROUTE,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=WAIT_SECONDS,
    )
    allowed = preflight.headers.get("access-control-allow-origin")
    if not preflight.ok or allowed not in ("*", origin):
        pytest.fail(
            f"the collector does not answer analytics.js's CORS preflight for {PAGE_ROUTE} "
            f"(status {preflight.status_code}, Access-Control-Allow-Origin {allowed!r})"
        )


@pytest.fixture(scope="module")
def cdn_url(collector_server: CollectorHandle) -> Iterator[str]:
    if not (AJS_BUNDLE_DIR / AJS_BUNDLE).is_file():
        pytest.skip(f"{AJS_BUNDLE_DIR / AJS_BUNDLE} is absent: run scripts/install-js")
    with serve_cdn(collector_server.url, {LANDING: landing_page()}) as url:
        yield url


@pytest.fixture(scope="module", params=sorted(APPS))
def app(
    request: pytest.FixtureRequest,
    collector_server: CollectorHandle,
    cdn_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Example, AppServer]]:
    example = APPS[request.param]
    data_dir: Path = tmp_path_factory.mktemp(example.name)
    env = app_environment(example, collector_server.url, data_dir)
    # The examples render the snippet when they have a browser write key.
    env["SEGMENT_BROWSER_WRITE_KEY"] = example.write_key + "-web"
    env["SEGMENT_SNIPPET_SRC"] = f"{cdn_url}{BUNDLES_PATH}{AJS_BUNDLE}"
    env["SEGMENT_BROWSER_CDN"] = cdn_url
    log = data_dir / "server.log"
    if example.setup:
        _run_setup(example, env, log)
    server = AppServer(example.target, example.directory, env, log)
    yield example, server
    server.stop()


@pytest.fixture
def visitor(
    browser: Any, app: tuple[Example, AppServer], collector: CollectorHandle
) -> Iterator[Visitor]:
    example, server = app
    context = browser.new_context()
    try:
        yield Visitor(context, server, example.write_key, collector)
    finally:
        context.close()


@pytest.fixture
def journey(app: tuple[Example, AppServer]) -> Journey:
    return JOURNEYS[app[0].name]


def test_a_server_sets_the_id_first_and_analytics_js_adopts_it(
    visitor: Visitor, journey: Journey
) -> None:
    response = visitor.open(journey.home)
    anonymous_id = visitor.cookie("ajs_anonymous_id")
    assert anonymous_id is not None
    uuid.UUID(anonymous_id)
    # The raw form: what analytics-next writes itself.
    assert f"ajs_anonymous_id={anonymous_id};" in set_cookies(response)
    visitor.browser("track", "Browser Clicked", {"button": "hero"})
    journey.browse(visitor)
    anonymous = visitor.settle()
    assert identities(anonymous) == {(anonymous_id, None)}, describe(anonymous)
    assert_page_views_by_the_server(anonymous)
    versions = {m["context"]["library"]["version"] for m in anonymous if from_browser(m)}
    assert versions == {f"next-{analytics_next_version()}"}

    journey.log_in(visitor)
    logging_in = visitor.settle()
    [identify] = pick(logging_in, "server", "identify")
    user_id = identify["userId"]
    assert user_id and identify["anonymousId"] == anonymous_id
    assert {m.get("anonymousId") for m in logging_in if m["type"] != "alias"} == {anonymous_id}
    # The page the login lands on is the user's already, on the server's side.
    [landed] = [
        m for m in pick(logging_in, "server", "page") if m["properties"]["path"] == journey.home
    ]
    assert landed["userId"] == user_id

    # The snippet tells analytics.js who the user is: no identify from the browser.
    assert visitor.page.evaluate("() => analytics.user().id()") == user_id
    visitor.browser("track", "Browser Clicked", {"button": "as-user"})
    journey.act_as_user(visitor)
    as_user = visitor.settle()
    assert identities(as_user) == {(anonymous_id, user_id)}, describe(as_user)
    assert_page_views_by_the_server(as_user)
    assert visitor.cookie("ajs_user_id") == user_id
    assert visitor.cookie("ajs_anonymous_id") == anonymous_id
    visitor.assert_stayed_on_loopback()


#: Once the page a logout leads to has run its analytics.reset().
RESET_DONE = "() => window.analytics.initialized === true && analytics.user().id() === null"


def test_after_a_logout_analytics_js_has_no_user_and_the_next_login_a_new_visitor(
    visitor: Visitor, journey: Journey
) -> None:
    visitor.open(journey.home)
    first_visitor = visitor.cookie("ajs_anonymous_id")
    journey.log_in(visitor)
    [identify] = pick(visitor.settle(), "server", "identify")
    first_user = identify["userId"]
    assert visitor.page.evaluate("() => analytics.user().id()") == first_user

    # The page the logout leads to calls analytics.reset(): the browser forgets the
    # user and starts a new visitor, which the server reads from the cookie.
    journey.log_out(visitor)
    visitor.page.wait_for_function(RESET_DONE)
    new_visitor = visitor.page.evaluate("() => analytics.user().anonymousId()")
    assert new_visitor not in (None, first_visitor)
    assert visitor.cookie("ajs_anonymous_id") == new_visitor
    assert visitor.cookie("ajs_user_id") is None
    event = visitor.browser("track", "Browser Clicked", {"button": "logged-out"})
    assert (event["anonymousId"], event.get("userId")) == (new_visitor, None)
    logged_out = visitor.settle()
    assert all(m.get("userId") is None for m in logged_out), describe(logged_out)

    # The next user to log in on this browser (the blog: a new reader) is joined to the
    # new visitor, not to the first user's.
    journey.log_in(visitor)
    logging_in = visitor.settle()
    [identify] = pick(logging_in, "server", "identify")
    next_user = identify["userId"]
    assert identify["anonymousId"] == new_visitor
    assert identities(logging_in) == {(new_visitor, None), (new_visitor, next_user)}, describe(
        logging_in
    )
    assert visitor.page.evaluate("() => analytics.user().id()") == next_user
    visitor.assert_stayed_on_loopback()


def test_b_analytics_js_sets_the_id_first_and_the_server_adopts_it(
    visitor: Visitor, journey: Journey, cdn_url: str
) -> None:
    visitor.open_landing(cdn_url)
    anonymous_id = visitor.cookie("ajs_anonymous_id")
    assert anonymous_id is not None
    response = visitor.open(journey.home)
    assert "ajs_anonymous_id=" not in set_cookies(response)
    reader = "reader-" + secrets.token_hex(4)
    visitor.browser("identify", reader)
    first = visitor.settle()
    assert {m["anonymousId"] for m in first} == {anonymous_id}, describe(first)

    # The server keeps the visitor; the ajs_user_id cookie analytics.js wrote is a
    # browser's claim, not the server's user.
    visitor.open(journey.home)
    second = visitor.settle()
    assert identities(second) == {(anonymous_id, None)}, describe(second)
    assert_page_views_by_the_server(second)
    assert visitor.cookie("ajs_anonymous_id") == anonymous_id
    visitor.assert_stayed_on_loopback()


def test_c_classic_quoted_cookies_are_read_by_both_sides(
    visitor: Visitor, journey: Journey
) -> None:
    anonymous_id, user_id = str(uuid.uuid4()), "classic-" + secrets.token_hex(4)
    visitor.context.add_cookies(
        [
            {"name": name, "value": f"%22{value}%22", "url": visitor.app.url}
            for name, value in (("ajs_anonymous_id", anonymous_id), ("ajs_user_id", user_id))
        ]
    )
    response = visitor.open(journey.home)
    assert "ajs_anonymous_id=" not in set_cookies(response)
    visitor.browser("track", "Browser Clicked", {"button": "hero"})
    # analytics-next rewrites both cookies in its raw form; the server reads that too.
    assert (visitor.cookie("ajs_anonymous_id"), visitor.cookie("ajs_user_id")) == (
        anonymous_id,
        user_id,
    )
    visitor.open(journey.home)
    messages = visitor.settle()
    expected = {(anonymous_id, user_id), (anonymous_id, None)}
    assert identities(messages) == expected, describe(messages)
    assert_page_views_by_the_server(messages)
    visitor.assert_stayed_on_loopback()


def test_requests_beyond_loopback_are_seen_and_fail(browser: Any) -> None:
    """The guard the other tests rely on."""
    context = browser.new_context()
    try:
        network = NetworkLog(context)
        page = context.new_page()
        url = "http://cdn.segment.com/analytics-next/bundles/standalone.js"
        reached = page.evaluate("url => fetch(url).then(() => true, () => false)", url)
        assert reached is False
        assert network.outside_loopback() == [url]
    finally:
        context.close()


def test_a_browser_retry_reaches_the_collector(
    browser: Any, cdn_url: str, collector: CollectorHandle
) -> None:
    """After a 503, analytics.js retries with ``X-Retry-Count``: the collector must allow both."""
    context = browser.new_context()
    try:
        network = NetworkLog(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{cdn_url}{LANDING}?writeKey=retry-key")
        page.wait_for_function(ANALYTICS_READY)
        collector.wait_for(1, timeout=WAIT_SECONDS, type="page")
        collector.faults({"status": 503, "count": 1})
        url = collector.url + "/v1/t"

        def is_retry(request: Any) -> bool:
            return bool(request.url == url and request.headers.get("x-retry-count") == "1")

        try:
            with page.expect_request_finished(is_retry) as retried:
                page.evaluate("() => { analytics.track('Retried'); }")
        except sync_api.TimeoutError:
            pytest.fail(f"no retry got through; the browser said: {network.console_errors}")
        response = retried.value.response()
        assert response is not None and response.status == 200
        assert len(collector.wait_for(1, timeout=WAIT_SECONDS, type="track", event="Retried")) == 1
        assert collector.summary()["requests"]["faulted"] == 1
        # The page could read the 503 (no CORS failure), and the retry was allowed.
        assert network.failed_to(collector.url) == [], network.console_errors
    finally:
        context.close()
