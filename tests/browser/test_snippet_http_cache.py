"""Pages the browser shows from its own HTTP cache, and a user id analytics.js kept
where the server's cookie is gone: one page view per navigation, and the browser's
events carry the user the server knows now, not the one a copy was made for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import CollectorHandle
from tests.browser.test_snippet import (
    SiteConfig,
    Visit,
    cdn_url,
    describe,
    from_browser,
    running_site,
    settle,
)

__all__ = ["cdn_url"]  # a fixture of this module too

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")

DELIVERY = "() => performance.getEntriesByType('navigation')[0].deliveryType"


@pytest.fixture(scope="module")
def flask_site(
    collector_server: CollectorHandle, cdn_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    config = SiteConfig("flask", "server")
    with running_site(config, collector_server, cdn_url, tmp_path_factory) as site:
        yield site


@pytest.fixture(scope="module")
def django_site(
    collector_server: CollectorHandle, cdn_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    config = SiteConfig("django", "server")
    with running_site(config, collector_server, cdn_url, tmp_path_factory) as site:
        yield site


@pytest.fixture
def visit(browser: Any, flask_site: Any, collector: CollectorHandle) -> Iterator[Visit]:
    visit = Visit(browser, flask_site, collector)
    try:
        yield visit
    finally:
        visit.close()


def follow(visit: Visit, link: str) -> None:
    """Click ``link`` on the page, then wait for analytics.js on the page it opens."""
    with visit.page.expect_navigation():
        visit.page.click(f"#{link}")
    visit.page.wait_for_function("() => window.analytics && window.analytics.initialized")


def test_a_visit_the_browser_s_cache_answers_is_counted_by_the_browser(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    visit.navigate("/")
    follow(visit, "cached")  # asked of the server, which counts it
    follow(visit, "about")
    with visit.delivered("/v1/p"):
        follow(visit, "cached")  # from the cache: the server never hears of it
    assert visit.page.evaluate(DELIVERY) == "cache"
    events = settle(flask_site, collector, 5)  # four page views and the track on "/"
    pages = [e for e in events if e["message"]["type"] == "page"]
    paths = Counter(e["message"]["properties"]["path"] for e in pages)
    assert paths == Counter({"/": 1, "/cached": 2, "/about": 1}), describe(events)
    [by_the_browser] = [e for e in pages if from_browser(e)]
    assert by_the_browser["message"]["properties"]["path"] == "/cached"


def test_a_page_shown_from_a_304_carries_the_user_logged_in_now(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    visit.navigate("/login?as=u-42")
    follow(visit, "etag")  # made for u-42
    visit.navigate("/login?as=u-43")  # another user, no logout between
    follow(visit, "etag")  # a 304: the browser shows u-42's copy
    assert visit.page.evaluate(DELIVERY) == "cache"
    assert visit.page.evaluate("() => analytics.user().id()") == "u-43"
    visit.track("/etag")
    events = settle(flask_site, collector, 9)  # 2 identifies, 4 page views, 3 tracks
    tracks = [e["message"] for e in events if e["message"]["type"] == "track"]
    assert [(t["properties"]["at"], t.get("userId")) for t in tracks] == [
        ("/about", "u-42"),
        ("/about", "u-43"),
        ("/etag", "u-43"),
    ], describe(events)
    pages = [e["message"] for e in events if e["message"]["type"] == "page"]
    assert [(p["properties"]["path"], p.get("userId")) for p in pages][-1] == ("/etag", "u-43")


def test_a_user_id_analytics_js_kept_without_the_cookie_is_dropped_once_logged_out(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    visit.navigate("/login?as=u-42")
    assert visit.page.evaluate("() => localStorage.getItem('ajs_user_id')") is not None
    # A logout on another subdomain of the cookie's domain expired the shared cookie;
    # this host's localStorage still names the user.
    visit.page.evaluate("() => { document.cookie = 'ajs_user_id=; Max-Age=0; Path=/'; }")
    visit.navigate("/logout")  # no user on the server's side now
    assert visit.page.evaluate("() => analytics.user().id()") is None
    assert visit.cookie("ajs_user_id") is None
    events = settle(flask_site, collector, 5)  # identify, 2 pages, 2 tracks
    last_track = [e["message"] for e in events if e["message"]["type"] == "track"][-1]
    assert last_track.get("userId") is None, describe(events)


def test_a_logout_answered_with_a_redirect_leaves_the_browser_no_user(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    """The usual logout (``logout_user(); return redirect(...)``), with no
    ``analytics.reset()`` on any page: the logout's answer expires the user cookie
    analytics.js keeps, so the page it leads to names no user on either side."""
    visit.navigate("/login?as=u-42")
    assert visit.cookie("ajs_user_id") == "u-42"
    visit.navigate("/logout")  # to /about
    assert visit.page.evaluate("() => analytics.user().id()") is None
    assert visit.cookie("ajs_user_id") is None
    [visitor] = visit.cookies(flask_site.cookie_name)
    assert visit.page.evaluate("() => analytics.user().anonymousId()") == visitor
    events = settle(flask_site, collector, 5)  # identify, 2 pages, 2 tracks
    last_track = [e["message"] for e in events if e["message"]["type"] == "track"][-1]
    assert last_track.get("userId") is None, describe(events)
    assert last_track["anonymousId"] == visitor


def test_a_form_another_site_posts_back_keeps_the_browser_s_visitor(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    """The browser holds the Lax id cookie back from that POST: the server, seeing none,
    must not replace it; analytics.js goes on with the visitor the cookie names."""
    visit.navigate("/")
    [visitor] = visit.cookies(flask_site.cookie_name)
    other_site = visit.base_url.replace("127.0.0.1", "localhost")
    back = f"{visit.base_url}/payment-return"
    with visit.page.expect_navigation(url=back):
        visit.page.goto(f"{other_site}/payment?to={back}")
    visit.page.wait_for_function("() => window.analytics && window.analytics.initialized")
    visit.track("returned")
    assert visit.cookies(flask_site.cookie_name) == [visitor]
    # The page call of "/" and the browser's track there, the other site's page call
    # (a visitor of its own), the login's identify (of an id the server made for that
    # request alone) and the browser's track after it.
    events = settle(flask_site, collector, 5)
    browser_ids = {e["message"]["anonymousId"] for e in events if from_browser(e)}
    assert browser_ids == {visitor}, describe(events)


def test_a_page_from_the_http_cache_sends_only_the_origin_of_its_referrer(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    """The server redacted the referrer of the visit that made the copy: a later
    visit's referrer, which it never saw, is cut to its origin."""
    visit.navigate("/")
    follow(visit, "cached")  # made by the server, from "/"
    visit.navigate("/about?token=SECRET123&tab=1")
    with visit.delivered("/v1/p"):
        follow(visit, "cached")  # from the cache, after a page with a secret
    visit.track("/cached")
    events = settle(
        flask_site, collector, 7
    )  # 3 page views by the server, 1 by the browser, 3 tracks
    assert "SECRET123" not in str([e["message"] for e in events]), describe(events)
    last = [e["message"] for e in events if from_browser(e)][-1]
    assert last["context"]["page"]["referrer"] == visit.base_url + "/"


def test_a_logout_in_another_tab_holds_in_a_page_still_open(
    visit: Visit, flask_site: Any, collector: CollectorHandle
) -> None:
    """analytics.js in the page still open keeps no copy of the ids in memory to write
    back once the logout's analytics.reset() cleared them."""
    visit.navigate("/login?as=u-42")  # /about, for u-42
    other_tab = visit.context.new_page()
    other_tab.goto(visit.base_url + "/signed-out")
    other_tab.wait_for_function("() => window.analytics && window.analytics.initialized")
    other_tab.wait_for_function("() => analytics.user().id() === null")
    visit.track("still open")  # in the first tab's page, made for u-42
    assert visit.cookie("ajs_user_id") in (None, "", "null")
    # The login's identify, the page views of /about and /signed-out, and two tracks.
    events = [e["message"] for e in settle(flask_site, collector, 5)]
    [still_open] = [m for m in events if m.get("properties", {}).get("at") == "still open"]
    assert still_open.get("userId") is None, events


def test_a_revisit_of_a_page_django_s_cache_keeps_is_counted_by_the_browser(
    browser: Any, django_site: Any, collector: CollectorHandle
) -> None:
    # cache_page: a page a cache may share, which the browser's own cache keeps too.
    visit = Visit(browser, django_site, collector)
    try:
        visit.navigate("/")
        follow(visit, "cached")  # asked of the server, which counts it
        with visit.page.expect_navigation():
            visit.page.goto(f"{visit.base_url}/about")
        follow(visit, "cached")  # from the browser's cache: no server hears of it
        assert visit.page.evaluate(DELIVERY) == "cache"
        events = settle(django_site, collector, 5)  # four page views and the track on "/"
    finally:
        visit.close()
    pages = [e for e in events if e["message"]["type"] == "page"]
    paths = Counter(e["message"]["properties"]["path"] for e in pages)
    assert paths == Counter({"/": 1, "/cached": 2, "/about": 1}), describe(events)
    [by_the_browser] = [e for e in pages if from_browser(e)]
    assert by_the_browser["message"]["properties"]["path"] == "/cached"
