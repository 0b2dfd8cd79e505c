from __future__ import annotations

import functools
import logging
import re
from typing import Any

import pytest

from segment_core.web import (
    RequestInfo,
    RequestTracker,
    WebOptions,
    is_bot,
    page_name,
    page_properties,
    privacy_allows,
    serves_graphql,
    should_track_page,
)
from tests.web.conftest import BROWSER, make_request


def tracked(request: RequestInfo | None = None, status: int = 200, **options: Any) -> bool:
    request = request or make_request()
    return should_track_page(request, status, WebOptions(**options), content_type="text/html")


def test_a_browser_get_is_a_page_view() -> None:
    assert tracked()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_only_get_by_default(method: str) -> None:
    assert not tracked(make_request(method=method))


def test_page_methods_option() -> None:
    assert tracked(make_request(method="HEAD"), page_methods=("GET", "HEAD"))
    assert tracked(make_request(method="get"))


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, True), (201, True), (203, True), (304, True), (301, False), (302, False),
     (307, False), (400, False), (404, False), (500, False), (101, False),
     # The browser stays on its page, or gets a part of a file.
     (204, False), (205, False), (206, False)],
)  # fmt: skip
def test_status(status: int, expected: bool) -> None:
    assert tracked(status=status) is expected


@pytest.mark.parametrize(
    ("path", "content_type", "expected"),
    [
        ("/products/42", None, True),
        ("/products/42", "text/html; charset=utf-8", True),
        ("/about.html", None, True),
        ("/people/ann.smith", None, True),  # no type's extension
        ("/docs/", None, True),
        # A program's source names a slug as often as a file: the page of a package,
        # a tag, a file in a code browser.
        ("/package/chart.js", None, True),
        ("/tags/node.js", None, True),
        ("/blob/main/setup.py", None, True),
        # What the browser revalidates is no page: a file, data.
        ("/files/report.pdf", None, False),
        ("/export/orders.csv", None, False),
        ("/api/items.json", None, False),
        ("/products/42", "application/json", False),
        ("/report", "application/pdf", False),
        # A framework's default content type on a 304 does not make a file a page.
        ("/files/report.pdf", "text/html; charset=utf-8", False),
    ],
)
def test_a_304_counts_only_for_a_page(path: str, content_type: str | None, expected: bool) -> None:
    request = make_request(path=path)
    assert should_track_page(request, 304, WebOptions(), content_type=content_type) is expected


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.css",
        "/media/u/1.png",
        "/favicon.ico",
        "/robots.txt",
        "/apple-touch-icon-precomposed.png",
        "/.well-known/security.txt",
    ],
)
def test_default_exclusions(path: str) -> None:
    assert not tracked(make_request(path=path))


PROBES = [
    {"user-agent": "curl/8.5.0", "accept": "*/*"},  # Docker's HEALTHCHECK, curl -f
    {},  # HAProxy's httpchk
    {"user-agent": "Envoy/HC"},
    {"user-agent": "Uptime-Kuma/1.23", "accept": "application/json, text/plain, */*"},
    # A page's own fetch() (not a navigation) of a health path.
    {"user-agent": BROWSER, "accept": "text/html", "sec-fetch-dest": "empty"},
]


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/healthz/",
        "/api/ready",
        "/livez",
        "/ping",
        "/api/v1/health",
        "/api/v1.0/health",
        "/api/internal/health",
        "/_health",
        "/-/ready",
        "/actuator/health",
        "/health/live",
        "/healthz/ready",
        "/status/health",
        "/_ah/health",
        "/en/health",
        "/services/billing/healthz",
        "/status/healthcheck/",
        "/health-check",
        # Pages' paths too: a probe of them is no visit.
        "/topics/health",
        "/matches/42/live",
    ],
)
def test_health_checks_are_excluded_for_probes_and_pages_for_browsers(path: str) -> None:
    for headers in PROBES:
        request = make_request(path=path, headers={})
        request.headers.clear()
        request.headers.update(headers)
        assert not tracked(request), headers
    # A person who opens it in a browser (Sec-Fetch-Dest, or an old browser's Accept),
    # or whose Turbo Drive or boosted htmx navigation renders it (a fetch).
    assert tracked(make_request(path=path, headers={"sec-fetch-dest": "document"}))
    assert tracked(make_request(path=path))
    # Media types and these tokens are read in any case.
    assert tracked(make_request(path=path, headers={"accept": "TEXT/HTML,*/*"}))
    assert tracked(make_request(path=path, headers={"sec-fetch-dest": "Document"}))
    fetched = {"sec-fetch-dest": "empty", "sec-fetch-mode": "cors"}
    turbo = {**fetched, "x-turbo-request-id": "1", "accept": "text/vnd.turbo-stream.html"}
    assert tracked(make_request(path=path, headers=turbo))
    assert tracked(
        make_request(path=path, headers={**fetched, "hx-request": "true", "hx-boosted": "true"})
    )


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/healthy-recipes",
        "/static",
        "/products/static/x",
        "/ping-pong",
        "/ready-meals",
        "/services/health-check-up",
    ],
)
def test_not_excluded(path: str) -> None:
    assert tracked(make_request(path=path))


def made_in(module: str, name: str = "GraphQLView") -> type:
    """A class as the package of ``module`` defines it (its ``__module__`` says which)."""
    return type(name, (), {"__module__": module})


def a_view_function() -> None:
    """A plain view of an app's own."""


@pytest.mark.parametrize(
    "endpoint",
    [
        made_in("graphene_django.views"),
        made_in("graphene_django.views")(),  # an instance
        made_in("strawberry.asgi", "GraphQL")(),
        made_in("ariadne.asgi.graphql", "GraphQL")(),
        made_in("ariadne_django.views"),
        made_in("graphql_server.flask.graphqlview"),
        # An app's own subclass, wherever it is defined.
        type("AccountGraphQLView", (made_in("graphene_django.views"),), {"__module__": "shop"}),
        # What Django's and Flask's as_view() make of a view class.
        type("view", (), {"view_class": made_in("strawberry.django.views")})(),
        functools.partial(made_in("strawberry.flask.views")),
    ],
)
def test_the_views_and_apps_of_graphql_servers(endpoint: object) -> None:
    assert serves_graphql(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        a_view_function,
        made_in("shop.views", "StrawberryView"),
        made_in("graphql.execution"),  # graphql-core serves nothing itself
        made_in("strawberry_fields.views"),
        len,
        None,
        "strawberry",
    ],
)
def test_other_views_and_apps(endpoint: object) -> None:
    assert not serves_graphql(endpoint)


def test_custom_exclusions_extend_the_defaults() -> None:
    assert not tracked(make_request(path="/admin/users"), exclude_paths=(r"^/admin/",))
    probe = make_request(path="/healthz", headers=PROBES[0])
    assert not tracked(probe, exclude_paths=(r"^/admin/",))
    replaced = {"exclude_paths": (r"^/admin/",), "replace_default_exclude_paths": True}
    assert not tracked(make_request(path="/admin/users"), **replaced)
    assert tracked(probe, **replaced)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        # Written as the app's routes are, for the path as browsers send it.
        (r"^/über-uns/vorschau", "/%C3%BCber-uns/vorschau"),
        (r"^/café/", "/caf%C3%A9/intern"),
        (re.compile(r"^/CAFÉ/", re.IGNORECASE), "/caf%C3%A9/intern"),
        # Written with escapes: browsers and clients write their hex digits in either case.
        (r"^/caf%C3%A9/intern", "/caf%c3%a9/intern"),
        (r"^/caf%c3%a9/intern", "/caf%C3%A9/intern"),
        (r"^/caf%C3%A9/intern", "/caf%C3%A9/intern"),
        # A byte that is no part of UTF-8 (Latin-1's "é") stays an escape.
        (r"^/caf%e9/", "/caf%E9/intern"),
    ],
)
def test_exclude_paths_find_the_text_a_path_spells(
    pattern: str | re.Pattern[str], path: str
) -> None:
    assert not tracked(make_request(path=path), exclude_paths=(pattern,))
    assert not tracked(make_request(path=f"/shop{path}", mount="/shop"), exclude_paths=(pattern,))
    # Known as the request starts: no cookie, no user lookup.
    assert RequestTracker(
        None, WebOptions(exclude_paths=(pattern,)), make_request(path=path)
    ).excluded
    assert tracked(make_request(path="/caf%C3%A8/intern"), exclude_paths=(pattern,))


def test_exclude_paths_searched_one_by_one_find_the_text_a_path_spells() -> None:
    # Patterns that cannot be joined into one (a group name twice).
    patterns = (r"^/(?P<section>über-uns)/", r"^/(?P<section>caf%C3%A9)/")
    options: dict[str, Any] = {"exclude_paths": patterns, "replace_default_exclude_paths": True}
    assert WebOptions(**options).exclude_regex is None
    assert not tracked(make_request(path="/%C3%BCber-uns/team"), **options)
    assert not tracked(make_request(path="/caf%c3%a9/menu"), **options)
    assert tracked(make_request(path="/%C3%BCber/team"), **options)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Twitterbot/1.0",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (compatible; YandexBot/3.0)",
        "Baiduspider+(+http://www.baidu.com/search/spider.htm)",
        "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
        "Mozilla/5.0 (Windows NT 10.0) Chrome-Lighthouse",
        "WhatsApp/2.23.20.0",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0)",
        "Datadog Agent/7.50",
        "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
        "Pinterest/0.2 (+http://www.pinterest.com/bot.html)",
        "kube-probe/1.29",
        "ELB-HealthChecker/2.0",
        "GoogleHC/1.0",
        "Consul Health Check",
        "Edge Health Probe",
        "Envoy/HC",
        "Cloudflare-Traffic-Manager/1.0",
        "Blackbox Exporter/0.25.0",
        "Uptime-Kuma/1.23.11",
        "check_http/v2.3.3 (nagios-plugins 2.3.3)",
        "Mastodon/4.2.1 (http.rb/5.1.1; +https://mastodon.social/)",
        "Pleroma 2.6.0; https://pleroma.example <admin@pleroma.example>",
        "Misskey/2024.3.1 (https://misskey.io)",
        "Iframely/1.3.1 (+https://iframely.com/docs/about)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Google-Read-Aloud",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0)",
    ],
)
def test_bots_are_skipped(agent: str) -> None:
    assert is_bot(agent)
    assert not tracked(make_request(headers={"user-agent": agent}))
    assert tracked(make_request(headers={"user-agent": agent}), skip_bots=False)


@pytest.mark.parametrize(
    "agent",
    [
        BROWSER,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Mozilla/5.0 (Linux; Android 10; CUBOT X19) AppleWebKit/537.36 Chrome/90 Mobile",
        "curl/8.5.0",
        "python-httpx/0.28.1",
        "",
        # In-app browsers: people who opened a link in the app.
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0 Mobile Safari/537.36 [Pinterest/Android]",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.4.32.98",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0]",
    ],
)
def test_people_and_scripts_are_not_bots(agent: str) -> None:
    assert not is_bot(agent)


def test_the_answer_for_a_user_agent_is_the_same_every_time_and_for_long_ones() -> None:
    # Answers are cached per user agent; long ones are matched every time.
    padding = " (KHTML, like Gecko)" * 40
    for _ in range(3):
        assert is_bot("Googlebot/2.1" + padding) and is_bot("Googlebot/2.1")
        assert not is_bot(BROWSER + padding) and not is_bot(BROWSER)


def test_no_host_no_page_view() -> None:
    assert not tracked(make_request(host=""))


def test_page_calls_off() -> None:
    assert not tracked(page_calls=False)


@pytest.mark.parametrize(
    ("headers", "options", "expected"),
    [
        ({"sec-gpc": "1"}, {}, False),  # honoured by default
        ({"sec-gpc": "1"}, {"honor_gpc": False}, True),
        ({"sec-gpc": "0"}, {}, True),
        ({"sec-gpc": "1, 1"}, {}, False),  # sent twice: the lines come joined
        ({"sec-gpc": "10"}, {}, True),
        ({"dnt": "1"}, {}, True),  # DNT is off by default
        ({"dnt": "1"}, {"honor_dnt": True}, False),
        ({"dnt": "0"}, {"honor_dnt": True}, True),
    ],
)
def test_privacy_signals(headers: dict[str, str], options: dict[str, Any], expected: bool) -> None:
    assert tracked(make_request(headers=headers), **options) is expected


def test_consent_hook_gets_the_native_request() -> None:
    native = object()
    seen: list[object] = []

    def consent(request: object) -> bool:
        seen.append(request)
        return False

    assert not tracked(make_request(native=native), consent=consent)
    assert seen == [native]
    assert tracked(consent=lambda request: True)


@pytest.mark.parametrize("answer", ["false", "no", 1, None, [], object()])
def test_consent_is_true_alone_anything_else_is_logged_as_no(
    answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    # A consent cookie's text ("false") is truthy: privacy must not hang on that.
    options = WebOptions(consent=lambda request: answer)
    with caplog.at_level(logging.ERROR, logger="segment"):
        assert not tracked(consent=options.consent)
        assert not privacy_allows(make_request(), options)
    assert "consent returned" in caplog.text and "no consent" in caplog.text


def test_page_filter_gets_request_and_response() -> None:
    response = object()
    request = make_request()
    calls: list[tuple[object, object]] = []

    def page_filter(req: object, resp: object) -> bool:
        calls.append((req, resp))
        return False

    options = WebOptions(page_filter=page_filter)
    assert not should_track_page(request, 200, options, response, content_type="text/html")
    assert calls == [(request, response)]  # no native request: the RequestInfo


class NoTruth:
    """An answer whose truth cannot be read, as a numpy array's or a pandas Series'."""

    def __bool__(self) -> bool:
        raise ValueError("the truth value of an array is ambiguous")


@pytest.mark.parametrize(
    ("answer", "page"),
    [(None, False), (re.match("a", "a"), True), ("", False), (NoTruth(), False)],
    ids=["none", "match", "empty", "no-truth"],
)
def test_page_filter_s_answer_is_read_as_a_condition_in_the_hook_s_guard(
    answer: object, page: bool, caplog: pytest.LogCaptureFixture
) -> None:
    options = WebOptions(page_filter=lambda request, response: answer)
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        tracks = should_track_page(make_request(), 200, options, None, content_type="text/html")
    assert tracks is page
    failed = isinstance(answer, NoTruth)
    assert ("the page_filter hook raised" in caplog.text) is failed


def broken(*args: object) -> Any:
    raise RuntimeError("bug in user code")


@pytest.mark.parametrize("option", ["page_filter", "consent"])
def test_a_hook_that_raises_is_logged_and_means_no(
    option: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        assert not tracked(**{option: broken})
    [record] = caplog.records
    assert record.name == "segment.core.web"
    assert f"the {option} hook raised" in record.getMessage()
    assert record.exc_info is not None and "bug in user code" in str(record.exc_info[1])


# -- names and properties ---------------------------------------------------------------


def test_page_name_modes() -> None:
    request = make_request()
    assert page_name(request, WebOptions()) == "product-detail"
    assert page_name(request, WebOptions(page_name="template")) == "/products/<int:pk>"
    assert page_name(request, WebOptions(page_name="path")) == "/products/42"
    assert page_name(request, WebOptions(page_name=lambda r: "Product")) == "Product"
    unnamed = make_request(route_name=None)
    assert page_name(unnamed, WebOptions()) == "/products/<int:pk>"
    # No route known (a page a middleware serves, as Django's flatpages): its path.
    routeless = make_request(route_name=None, route_template=None)
    assert page_name(routeless, WebOptions()) == "/products/42"
    assert page_name(routeless, WebOptions(page_name="template")) == "/products/42"
    assert page_name(routeless, WebOptions(page_name="route"), "/products/REDACTED") == (
        "/products/REDACTED"
    )


def test_page_name_hook_that_fails_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    assert page_name(make_request(), WebOptions(page_name=broken)) == "product-detail"
    assert page_name(make_request(), WebOptions(page_name=lambda r: 42)) == "product-detail"
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR"]


def test_page_properties() -> None:
    fields = {"path": "/p", "url": "https://x/p", "search": "", "referrer": ""}
    assert page_properties(make_request(), WebOptions(), fields, "Home") == {
        **fields,
        "name": "Home",
    }
    assert page_properties(make_request(), WebOptions(), fields, None) == fields
    extra = WebOptions(page_properties=lambda req, resp: {"title": "Shoes", "path": "/x"})
    assert page_properties(make_request(), extra, fields, None) == {
        **fields,
        "title": "Shoes",
        "path": "/x",
    }


def test_page_properties_hook_that_fails(caplog: pytest.LogCaptureFixture) -> None:
    fields = {"path": "/p"}
    assert (
        page_properties(make_request(), WebOptions(page_properties=broken), fields, None) == fields
    )
    not_a_dict = WebOptions(page_properties=lambda req, resp: ["x"])
    assert page_properties(make_request(), not_a_dict, fields, None) == fields
    assert len(caplog.records) == 2
