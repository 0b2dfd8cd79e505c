from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest

import segment_core
from segment_core.client import Client
from segment_core.testing import divert, divert_when
from segment_core.web import (
    DEFAULT_SNIPPET_SRC,
    RequestTracker,
    Snippet,
    WebOptions,
    find_csp_nonce,
    missing_browser_key,
    render_snippet,
    script_json,
)
from segment_core.web import _snippet as snippet_module
from tests.web.conftest import make_request
from tests.web.snippets import (
    has_snippet,
    is_inert_stub,
    script_code,
    script_tags,
    snippet_settings,
)

KEY = "browserKey123"
OPTIONS = WebOptions(browser_write_key=KEY)
UUID = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="runs the loader in Node.js")


@pytest.fixture(autouse=True)
def _default_client_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pages of ``RequestTracker(None, ...)`` follow the default client: one that is
    not diverted, whichever another directory's tests made the default (Django's is
    diverted under pytest, and its pages get the inert stub)."""
    client = Client("test-key", send=False)
    monkeypatch.setattr(segment_core, "default_client", client)
    yield
    client.shutdown(timeout=1)


def render(options: WebOptions | None = None, nonce: str | None = None, **request: Any) -> str:
    options = options or WebOptions(browser_write_key=KEY)
    return str(render_snippet(RequestTracker(None, options, make_request(**request)), nonce=nonce))


def test_the_browser_continues_the_servers_visitor() -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request(user_id="42"))
    html = render_snippet(tracker)
    assert isinstance(html, Snippet) and html.__html__() == str(html)
    settings = snippet_settings(html)
    assert settings["writeKey"] == KEY
    assert settings["anonymousId"] == tracker.analytics.anonymous_id
    assert settings["userId"] == "42"
    assert settings["src"] == f"https://cdn.segment.com/analytics.js/v1/{KEY}/analytics.min.js"
    # The server's cookie: host-only (no domain), a year, Secure on https.
    assert settings["options"]["cookie"] == {
        "domain": "",
        "path": "/",
        "maxage": 365,
        "sameSite": "Lax",
        "secure": True,
    }
    assert settings["options"]["user"] == {"cookie": {"key": "ajs_user_id"}}
    assert "integrations" not in settings["options"] and "cdn" not in settings
    # The server sends page views by default: the browser does not.
    assert settings["page"] is False


def test_behind_a_trusted_https_proxy_the_browser_keeps_the_cookie_secure() -> None:
    options = WebOptions(browser_write_key=KEY, trusted_proxies=1)
    request = make_request(scheme="http", headers={"x-forwarded-proto": "https"})
    tracker = RequestTracker(None, options, request)
    assert tracker.cookie_to_set() is not None and tracker.cookie_to_set().secure  # type: ignore[union-attr]
    assert snippet_settings(render_snippet(tracker))["options"]["cookie"]["secure"] is True


def test_an_id_the_view_changes_is_the_one_rendered() -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request())
    tracker.analytics.identify("new-user")
    assert snippet_settings(render_snippet(tracker))["userId"] == "new-user"


def test_a_returning_visitor_keeps_the_cookie_id() -> None:
    settings = snippet_settings(render(cookies={"ajs_anonymous_id": "%22abc-1%22"}, scheme="http"))
    assert settings["anonymousId"] == "abc-1"
    assert settings["userId"] is None
    assert settings["options"]["cookie"]["secure"] is False


def test_cookie_domain_lifetime_and_names_follow_the_server() -> None:
    options = WebOptions(
        browser_write_key=KEY,
        cookie_domain=".shop.example",
        cookie_max_age=86400 * 30,
        user_cookie_name="uid",
    )
    settings = snippet_settings(render(options))
    assert settings["options"]["cookie"]["domain"] == ".shop.example"
    assert settings["options"]["cookie"]["maxage"] == 30
    assert settings["options"]["user"] == {"cookie": {"key": "uid"}}


@pytest.mark.parametrize(
    ("given", "host", "protocol"),
    [
        ("events.eu1.segmentapis.com/v1", "events.eu1.segmentapis.com/v1", "https"),
        ("https://proxy.shop.example/seg/v1/", "proxy.shop.example/seg/v1", "https"),
        ("http://127.0.0.1:8765/v1", "127.0.0.1:8765/v1", "http"),
        # Without a path, as the server's host is given: analytics.js needs the API's /v1.
        ("http://127.0.0.1:8765", "127.0.0.1:8765/v1", "http"),
        ("https://proxy.shop.example/", "proxy.shop.example/v1", "https"),
        ("events.eu1.segmentapis.com", "events.eu1.segmentapis.com/v1", "https"),
        ("https://proxy.shop.example/seg", "proxy.shop.example/seg", "https"),
        # Without a scheme, the servers the client's host takes: an underscore, an IDN.
        ("seg_proxy:8080/v1", "seg_proxy:8080/v1", "https"),
        ("caf\u00e9.example/v1", "caf\u00e9.example/v1", "https"),
        # Numbers browsers read as an IPv4 address (0x alone is 0).
        ("https://1.0x/v1", "1.0x/v1", "https"),
        ("http://127.1:8765", "127.1:8765/v1", "http"),
    ],
)
def test_browser_api_host(given: str, host: str, protocol: str) -> None:
    settings = snippet_settings(render(WebOptions(browser_write_key=KEY, browser_api_host=given)))
    assert settings["options"]["integrations"] == {
        "Segment.io": {"apiHost": host, "protocol": protocol}
    }


def test_self_hosted_library_and_cdn() -> None:
    options = WebOptions(
        browser_write_key="k:1",
        snippet_src="/static/ajs/{write_key}.js",
        browser_cdn="https://cdn.proxy.example/",
    )
    settings = snippet_settings(render(options))
    assert settings["src"] == "/static/ajs/k%3A1.js"
    assert settings["cdn"] == "https://cdn.proxy.example"


def test_page_source_browser_moves_page_views_to_the_browser() -> None:
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    assert snippet_settings(render(options))["page"] is True
    assert options.server_page_views is False
    # page_calls off and no page_source: the browser is the side left.
    off = WebOptions(browser_write_key=KEY, page_calls=False)
    assert off.server_page_views is False
    assert snippet_settings(render(off))["page"] is True
    assert WebOptions(page_source="server").server_page_views is True


def test_a_view_s_own_page_call_takes_the_place_of_the_browser_s_page_view() -> None:
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    tracker = RequestTracker(Client("k", send=False), options, make_request())
    tracker.analytics.page("Custom Name", {"step": 2})
    assert snippet_settings(render_snippet(tracker))["page"] is False
    # A page a cache may store is made for every visitor it answers.
    assert snippet_settings(render_snippet(tracker, shared=True))["page"] is True


@pytest.mark.parametrize("method", ["POST", "post", "PUT"])
def test_a_page_answering_a_method_not_in_page_methods_is_no_page_view_in_the_browser(
    method: str,
) -> None:
    # Whichever side counts them, as many page views: a form shown again with its
    # errors, or a logout page, answers a POST; the server counts neither.
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    tracker = RequestTracker(None, options, make_request(method=method))
    assert snippet_settings(render_snippet(tracker))["page"] is False
    assert snippet_settings(render_snippet(tracker, shared=True))["page"] is False
    with_post = WebOptions(browser_write_key=KEY, page_source="browser", page_methods=["post"])
    tracker = RequestTracker(None, with_post, make_request(method="POST"))
    assert snippet_settings(render_snippet(tracker))["page"] is True


def test_page_source_server_without_page_calls_is_an_error() -> None:
    with pytest.raises(ValueError, match="page_source is 'server' but page_calls is off"):
        WebOptions(page_source="server", page_calls=False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page_source", "both"),
        ("browser_write_key", "key with spaces"),
        ("browser_write_key", 'k"></script>'),
        ("browser_write_key", 42),
        ("browser_write_key", "key\n"),  # a pattern's $ also matches before a last newline
        ("snippet_src", "javascript:alert(1)"),
        ("snippet_src", "https://cdn.example/a.js?k={key}"),
        ("snippet_src", "https://cdn.example/a b.js"),
        ("snippet_src", "cdn.example/a.js"),
        ("browser_cdn", "ftp://cdn.example"),
        ("browser_api_host", "events example/v1"),
        ("browser_api_host", "events.example/v1\n"),
        # analytics.js adds its paths to these: after a #fragment they would be none.
        ("browser_api_host", "https://proxy.example#frag"),
        ("browser_api_host", "https://proxy.example/v1#frag"),
        ("browser_cdn", "https://cdn.proxy.example/#x"),
        ("browser_api_host", "https://proxy.example:0"),  # no server listens there
        ("browser_cdn", "https://cdn.proxy.example:99999"),
        ("browser_api_host", "proxy.example:0/v1"),  # Segment's host/path form
        ("browser_api_host", "proxy.example:70000"),
        ("browser_api_host", "[::1]:0/v1"),
        ("browser_api_host", "proxy;example/v1"),  # no server's name, with a scheme or not
        ("browser_api_host", "https://proxy;example/v1"),
        # What browsers' URL parsers refuse, though a resolver may take it.
        ("browser_api_host", "https://collector.2024"),
        ("browser_api_host", "1.2.3.4.5/v1"),
        ("browser_cdn", "https://256.1.1.1"),
        ("browser_api_host", "[fe80::1%25eth0]:80/v1"),
        ("snippet_src", "https://1.2.3.4.5/analytics.js"),
        ("csp_nonce", "request csp nonce"),
        ("csp_nonce", "csp_nonce\n"),
        ("csp_nonce", 3),
    ],
)
def test_bad_values_name_the_option(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"^{name}"):
        WebOptions.from_mapping({name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("browser_api_host", "https://user:s3cret@proxy.example/v1"),
        ("browser_api_host", "http://s3cret@127.0.0.1:8765"),
        ("browser_cdn", "https://user:s3cret@cdn.proxy.example"),
        ("snippet_src", "https://user:s3cret@cdn.example/ajs/{write_key}.js"),
        ("browser_api_host", "user:s3cret@proxy.example/v1"),  # Segment's host/path form
        ("snippet_src", "//user:s3cret@cdn.example/a.js"),
        ("snippet_src", "https://bob:s3cret@pass word@cdn.example/a.js"),  # an @ in it
    ],
)
def test_a_url_of_the_page_with_credentials_is_refused_without_showing_them(
    name: str, value: str
) -> None:
    # Every visitor would read the password in the page (and browsers send nothing there).
    with pytest.raises(ValueError, match=f"^{name} must") as raised:
        WebOptions.from_mapping({"browser_write_key": KEY, name: value})
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "hostile",
    [
        "</script><script>alert(1)</script>",
        "<!--<script>",
        "a\u2028b\u2029c",
        "x&amp;y>z",
        '"; alert(1); "',
    ],
)
def test_ids_cannot_break_out_of_the_script(hostile: str) -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request(user_id=hostile))
    tracker.analytics.anonymous_id = hostile
    html = str(render_snippet(tracker))
    body = script_code(html)
    for forbidden in ("<", "\u2028", "\u2029", "]]>"):
        assert forbidden not in body
    settings_json = body[body.rindex("})({") + 3 :]
    assert "&" not in settings_json and ">" not in settings_json
    settings = snippet_settings(html)
    assert settings["userId"] == settings["anonymousId"] == hostile


def test_a_page_a_cache_may_share_names_no_visitor() -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request(user_id="42"))
    settings = snippet_settings(render_snippet(tracker, shared=True))
    assert (settings["anonymousId"], settings["userId"]) == (None, None)
    assert settings["cookieName"] == "ajs_anonymous_id"  # where the loader finds the id
    assert tracker.analytics.anonymous_id not in str(render_snippet(tracker, shared=True))
    # Nothing in the page varies by visitor; the cookie hands the browser the id,
    # for a known user too.
    assert not tracker.snippet_rendered
    cookie = tracker.cookie_to_set()
    assert cookie is not None and cookie.value == tracker.analytics.anonymous_id


def test_a_page_no_cache_shares_names_its_visitor() -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request())
    settings = snippet_settings(render_snippet(tracker))
    assert settings["anonymousId"] == tracker.analytics.anonymous_id
    assert "shared" not in settings
    assert tracker.snippet_rendered


@needs_node
@pytest.mark.parametrize(
    ("cookie", "options", "expected"),
    [
        (f"ajs_anonymous_id={UUID}", {}, UUID),
        (f"other=1; ajs_anonymous_id=%22{UUID}%22", {}, UUID),  # analytics.js classic
        (f"sid=x; visitor={UUID}; ajs_anonymous_id=theirs", {"cookie_name": "visitor"}, UUID),
        (f"ajs_anonymous_id={UUID}; ajs_anonymous_id=other", {}, UUID),  # the first, as sent
        ("ajs_anonymous_id=%E9", {}, None),  # undecodable: analytics.js makes its own
        ("", {}, None),
    ],
)
def test_the_loader_of_a_shared_page_takes_the_id_from_the_cookie(
    cookie: str, options: dict[str, Any], expected: str | None
) -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY, **options), make_request())
    queued = run_loader(str(render_snippet(tracker, shared=True)), cookie)
    assert [call[1:] for call in queued if call[0] == "setAnonymousId"] == (
        [[expected]] if expected else []
    )


@needs_node
@pytest.mark.parametrize(
    "cookie",
    [
        "",  # none the browser can read: the page's
        f"ajs_anonymous_id={UUID}",  # the page's own visitor
        "ajs_anonymous_id=null",  # no id, for the server too: it made one up
        'ajs_anonymous_id="{}"',
        f"ajs_anonymous_id={'x' * 101}",
    ],
)
def test_the_loader_of_a_page_names_the_servers_visitor(cookie: str) -> None:
    tracker = RequestTracker(
        None,
        WebOptions(browser_write_key=KEY),
        make_request(user_id="42", cookies={"ajs_anonymous_id": UUID}),
    )
    queued = run_loader(str(render_snippet(tracker)), cookie)
    assert [call for call in queued if call[0] == "setAnonymousId"] == [["setAnonymousId", UUID]]
    assert any(call[:2] == ["on", "initialize"] for call in queued)  # the user, stored


@needs_node
@pytest.mark.parametrize("cookie_name", ["ajs_anonymous_id", "visitor"])
def test_a_page_made_for_another_visitor_names_the_cookies_visitor_and_no_user(
    cookie_name: str,
) -> None:
    # A template fragment cache kept the snippet of the visitor who came first: a
    # logged-in user's. The next visitor's cookie (set by the server in that very
    # response, for a new one) tells the page is not theirs.
    options = WebOptions(browser_write_key=KEY, cookie_name=cookie_name)
    first = RequestTracker(
        None, options, make_request(user_id="42", cookies={cookie_name: "first-visitor"})
    )
    fragment = str(render_snippet(first))
    queued = run_loader(fragment, f"{cookie_name}={UUID}")
    assert [call for call in queued if call[0] == "setAnonymousId"] == [["setAnonymousId", UUID]]
    assert not any(call[:2] == ["on", "initialize"] for call in queued)  # no user handed over
    # Decided as in a shared page: the browser's privacy signals count (then nothing
    # is handed to analytics.js, which never loads).
    queued = run_loader(fragment, f"{cookie_name}={UUID}", {"globalPrivacyControl": True})
    assert [call[0] for call in queued if call[0] in ("setAnonymousId", "on")] == []


# A page with just enough of a browser for the loader: the calls it queues for
# analytics.js, and the cookies it writes, as JSON.
_PAGE = """
var written = [];
var cookies = process.argv[1];
var document = {
  get cookie() { return cookies; },
  set cookie(value) { written.push(value); },
  addEventListener: function () {},
  currentScript: null,
  createElement: function () { return {}; },
  head: { appendChild: function () {} },
};
var location = new URL(process.argv[4] || "https://shop.example/");
var navigator = JSON.parse(process.argv[2]);
var window = globalThis;
%s
var queued = window.analytics.filter(Array.isArray);
// An event analytics.js announces to the handlers the loader queued ("reset",
// "initialize"), as analytics.js with another user and its own id ("new-id": after
// a reset, the new visitor's, made when first asked for).
var user = {
  id: function (id) {
    if (id !== undefined) written.push("user.id(" + id + ")");
    return "someone-else";
  },
  anonymousId: function () { return "new-id"; },
  traits: function (traits) {
    if (traits !== undefined) written.push("user.traits(" + JSON.stringify(traits) + ")");
    return {};
  },
};
var loaded = {
  user: function () { return user; },
  setAnonymousId: function (id) { written.push("setAnonymousId(" + id + ")"); },
};
queued.forEach(function (call) {
  if (call[0] === "on" && call[1] === process.argv[3]) call[2].call(loaded);
});
console.log(JSON.stringify([queued, written]));
"""


def run_loader(
    snippet: str, cookie: str, navigator: dict[str, Any] | None = None
) -> list[list[Any]]:
    queued, _ = run_loader_page(snippet, cookie, navigator)
    return queued


def run_loader_page(
    snippet: str,
    cookie: str,
    navigator: dict[str, Any] | None = None,
    *,
    event: str = "",
    url: str = "",
) -> tuple[list[list[Any]], list[str]]:
    """The calls the loader queues, and the cookies it writes (and, on analytics.js's
    ``event``, what its handler does)."""
    script = script_code(snippet)
    node = shutil.which("node") or "node"
    argv = [cookie, json.dumps(navigator or {}), event, url]
    result = subprocess.run(
        [node, "-e", _PAGE % script, *argv], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    queued, written = json.loads(result.stdout)
    return queued, written


BOT = {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}


@pytest.mark.parametrize(
    "headers", [BOT, {"sec-gpc": "1"}, {"dnt": "1"}], ids=["bot", "gpc", "dnt"]
)
def test_a_page_a_cache_may_share_is_the_same_whoever_asked_first(headers: dict[str, str]) -> None:
    # A cache hands the first visitor's page to all others: a bot's, too.
    options = WebOptions(browser_write_key=KEY, honor_dnt=True, page_source="browser")
    untracked = RequestTracker(None, options, make_request(headers=headers))
    tracked = RequestTracker(None, options, make_request())
    assert str(render_snippet(untracked, shared=True)) == str(render_snippet(tracked, shared=True))
    assert is_inert_stub(render_snippet(untracked))  # a page of its own: the server decides
    assert untracked.cookie_to_set() is None  # the shared page's loader reads this


def test_without_the_cookie_a_shared_page_is_decided_by_the_server() -> None:
    # The loader cannot tell a visitor the server refuses (consent, a bot) without
    # the server's cookie: such a visitor's page renders nothing, shared or not.
    options = WebOptions(
        browser_write_key=KEY, page_source="browser", set_cookie=False, consent=lambda r: False
    )
    refused = RequestTracker(None, options, make_request())
    assert is_inert_stub(render_snippet(refused, shared=True))


def test_whether_a_streamed_page_may_render_the_snippet_asks_no_hook() -> None:
    asked: list[object] = []

    def page_name(request: object) -> str:
        asked.append(request)  # a database query, in a real app
        return "Home"

    options = WebOptions(browser_write_key=KEY, page_source="browser", page_name=page_name)
    tracker = RequestTracker(None, options, make_request())
    assert tracker.may_render_snippet("text/html")
    assert not tracker.may_render_snippet("text/csv")
    assert asked == []


@needs_node
@pytest.mark.parametrize(
    ("options", "cookie", "navigator", "starts"),
    [
        ({}, f"ajs_anonymous_id={UUID}", {}, True),
        # No cookie: the server does not track this visitor (a bot, Sec-GPC, consent).
        ({}, "", {}, False),
        ({"cookie_name": "visitor"}, f"ajs_anonymous_id={UUID}", {}, False),
        # The browser's own signals, as the server honours them.
        ({}, f"ajs_anonymous_id={UUID}", {"globalPrivacyControl": True}, False),
        ({"honor_gpc": False}, f"ajs_anonymous_id={UUID}", {"globalPrivacyControl": True}, True),
        ({}, f"ajs_anonymous_id={UUID}", {"doNotTrack": "1"}, True),
        ({"honor_dnt": True}, f"ajs_anonymous_id={UUID}", {"doNotTrack": "1"}, False),
        # No server cookie to wait for: the signals alone decide.
        ({"set_cookie": False}, "", {}, True),
        ({"set_cookie": False}, "", {"globalPrivacyControl": True}, False),
    ],
)
def test_the_loader_of_a_shared_page_starts_analytics_only_for_tracked_visitors(
    options: dict[str, Any], cookie: str, navigator: dict[str, Any], starts: bool
) -> None:
    web_options = WebOptions(browser_write_key=KEY, page_source="browser", **options)
    # Made for a bot (the first to ask, the page then cached for all), unless no
    # cookie lets the browser decide: then the server decided, for a visitor it tracks.
    headers = BOT if web_options.set_cookie else {}
    tracker = RequestTracker(None, web_options, make_request(headers=headers))
    queued = run_loader(str(render_snippet(tracker, shared=True)), cookie, navigator)
    # Untracked, the page's calls stay queued and analytics.js is never loaded.
    assert any(call[0] == "page" for call in queued) is starts


@needs_node
def test_the_loader_of_a_page_no_cache_shares_ignores_the_browsers_signals() -> None:
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request())
    queued = run_loader(str(render_snippet(tracker)), "", {"globalPrivacyControl": True})
    assert ["setAnonymousId", tracker.analytics.anonymous_id] in queued  # the server decided


EXPIRED = "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"


@needs_node
@pytest.mark.parametrize(
    ("options", "url", "written"),
    [
        # The id cookies, host-only and for each domain above the host, whoever wrote
        # them: analytics.js's reset() removes its own alone, where it writes it.
        (
            {},
            "http://www.shop.example/bye",
            [
                f"ajs_anonymous_id{EXPIRED}{domain}; SameSite=Lax"
                for domain in ("; Domain=www.shop.example", "; Domain=shop.example", "")
            ],
        ),
        ({}, "http://localhost:8000/", [f"ajs_anonymous_id{EXPIRED}; SameSite=Lax"]),
        ({}, "http://127.0.0.1:8000/", [f"ajs_anonymous_id{EXPIRED}; SameSite=Lax"]),
        # The server's own cookie too, then it takes analytics.js's new visitor, with
        # the server's attributes: the next page's server calls carry that id.
        (
            {"cookie_name": "visitor"},
            "http://localhost/",
            [
                f"ajs_anonymous_id{EXPIRED}; SameSite=Lax",
                f"visitor{EXPIRED}; SameSite=Lax",
                "visitor=new-id; Max-Age=31536000; Path=/; SameSite=Lax",
            ],
        ),
        (
            {"cookie_name": "visitor", "cookie_domain": ".shop.example", "cookie_max_age": 3600},
            "https://shop.example/",
            [
                f"ajs_anonymous_id{EXPIRED}; Domain=shop.example; SameSite=Lax; Secure",
                f"ajs_anonymous_id{EXPIRED}; SameSite=Lax; Secure",
                f"visitor{EXPIRED}; Domain=shop.example; SameSite=Lax; Secure",
                f"visitor{EXPIRED}; SameSite=Lax; Secure",
                "visitor=new-id; Max-Age=3600; Path=/; Domain=.shop.example; SameSite=Lax; Secure",
            ],
        ),
        # No server cookie to keep the new visitor in.
        (
            {"cookie_name": "visitor", "set_cookie": False},
            "http://localhost/",
            [f"ajs_anonymous_id{EXPIRED}; SameSite=Lax", f"visitor{EXPIRED}; SameSite=Lax"],
        ),
    ],
)
def test_analytics_reset_starts_a_new_visitor_on_both_sides(
    options: dict[str, Any], url: str, written: list[str]
) -> None:
    scheme = url.partition(":")[0]
    tracker = RequestTracker(
        None, WebOptions(browser_write_key=KEY, **options), make_request(scheme=scheme)
    )
    for snippet in (render_snippet(tracker), render_snippet(tracker, shared=True)):
        cookies = f"visitor={UUID}; ajs_anonymous_id={UUID}"
        _, writes = run_loader_page(str(snippet), cookies, event="reset", url=url)
        assert writes == written


def test_script_json_escapes_for_a_script_element() -> None:
    text = script_json({"a": "</SCRIPT>&\u2028é"})
    assert text == '{"a": "\\u003c/SCRIPT\\u003e\\u0026\\u2028é"}'
    assert json.loads(text) == {"a": "</SCRIPT>&\u2028é"}


def test_the_nonce_goes_on_the_script_escaped() -> None:
    assert script_tags(render(nonce="r4nd0m+/=")) == ['<script nonce="r4nd0m+/=">\n']
    assert script_tags(render(nonce='x" onload="alert(1)')) == [
        '<script nonce="x&quot; onload=&quot;alert(1)">\n'
    ]
    assert script_tags(render()) == ["<script>\n"]


def test_no_inline_event_handlers() -> None:
    html = render(nonce="n")
    assert re.search(r"\son\w+\s*=", html) is None
    assert html.count("<script") == 1


@pytest.mark.parametrize(
    ("options", "request_overrides"),
    [
        (WebOptions(browser_write_key=KEY), {"headers": {"sec-gpc": "1"}}),
        (WebOptions(browser_write_key=KEY, honor_dnt=True), {"headers": {"dnt": "1"}}),
        (WebOptions(browser_write_key=KEY, consent=lambda request: False), {}),
        (WebOptions(browser_write_key=KEY, consent=lambda request: 1 / 0), {}),
        (WebOptions(browser_write_key=KEY), {"headers": {"user-agent": "Googlebot/2.1"}}),
        (WebOptions(browser_write_key=KEY), {"path": "/healthz", "headers": {"accept": "*/*"}}),
        (WebOptions(browser_write_key=KEY, exclude_paths=[r"^/admin/"]), {"path": "/admin/x"}),
    ],
)
def test_an_inert_stub_for_visitors_the_server_does_not_track(
    options: WebOptions, request_overrides: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The page's own analytics.* calls (analytics.reset() at logout) must not fail.
    with caplog.at_level(logging.ERROR):
        html = render(options, nonce="n", **request_overrides)
    assert is_inert_stub(html) and script_tags(html) == ['<script nonce="n">\n']
    assert "anonymousId" not in html and "writeKey" not in html and "src" not in html


@needs_node
def test_the_inert_stub_queues_the_pages_calls_and_loads_nothing() -> None:
    html = render(headers={"sec-gpc": "1"})
    page = html.replace("\n//]]>", "\nanalytics.reset(); analytics.track('Signed out');\n//]]>")
    queued, written = run_loader_page(page, f"ajs_anonymous_id={UUID}")
    assert queued == [["reset"], ["track", "Signed out"]]
    assert written == []


def test_the_privacy_signals_the_server_ignores_do_not_hide_the_snippet() -> None:
    options = WebOptions(browser_write_key=KEY, honor_gpc=False)
    assert has_snippet(render(options, headers={"sec-gpc": "1", "dnt": "1"}))
    assert has_snippet(render(WebOptions(browser_write_key=KEY, consent=lambda request: True)))


def test_in_test_mode_the_browser_gets_the_inert_stub(client: Client) -> None:
    # The server's events wait in the outbox: a browser test (a live server and a
    # real browser) must not send the browser's to the source's real write key.
    divert(client)
    tracker = RequestTracker(client, WebOptions(browser_write_key=KEY), make_request())
    html = render_snippet(tracker, nonce="n")
    assert is_inert_stub(html) and script_tags(html) == ['<script nonce="n">\n']
    assert KEY not in html and "cdn.segment.com" not in html
    # The response is the one a browser outside tests gets: cookie and Vary alike.
    assert tracker.snippet_rendered and tracker.cookie_to_set() is not None


@pytest.mark.parametrize(
    "api_host", ["http://127.0.0.1:8765", "localhost:8765/v1", "http://[::1]:8765/v1"]
)
def test_in_test_mode_the_browser_sends_to_a_local_collector(client: Client, api_host: str) -> None:
    divert(client)
    options = WebOptions(browser_write_key=KEY, browser_api_host=api_host)
    html = render_snippet(RequestTracker(client, options, make_request()))
    assert snippet_settings(html)["writeKey"] == KEY


def test_a_client_deciding_at_its_first_message_decides_for_the_page(client: Client) -> None:
    # As the adapters leave their client to decide whether tests run.
    divert_when(client, lambda: True)
    assert is_inert_stub(render_snippet(RequestTracker(client, OPTIONS, make_request())))
    divert_when(client, lambda: False)
    assert has_snippet(render_snippet(RequestTracker(client, OPTIONS, make_request())))


def test_a_client_sending_in_tests_gets_the_loader(client: Client) -> None:
    divert(client, None)  # send_in_tests, or a client that was never diverted
    assert has_snippet(render_snippet(RequestTracker(client, OPTIONS, make_request())))


def test_without_a_browser_key_nothing_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    import segment_core.web._snippet as module

    module._warned_no_key = False
    with caplog.at_level(logging.WARNING, logger="segment.core.web"):
        assert render(WebOptions()) == ""
        assert render(WebOptions()) == ""
    [warning] = [r for r in caplog.records if "browser_write_key" in r.getMessage()]
    # Under the "segment" logger, which log_handler and users' logging set up.
    assert warning.name.startswith("segment.")


def test_the_server_key_is_never_used(client: Client) -> None:
    tracker = RequestTracker(client, WebOptions(), make_request())
    assert render_snippet(tracker) == ""
    assert "test-key" not in render(WebOptions(browser_write_key=KEY))


def test_missing_browser_key_is_reported_when_the_snippet_is_configured() -> None:
    assert not missing_browser_key(WebOptions())
    assert not missing_browser_key(WebOptions(browser_write_key=KEY, page_source="browser"))
    assert missing_browser_key(WebOptions(page_source="browser"))
    assert missing_browser_key(WebOptions(snippet_src="/static/analytics.js"))
    assert missing_browser_key(WebOptions(browser_api_host="events.eu1.segmentapis.com/v1"))
    assert missing_browser_key(WebOptions(browser_cdn="https://cdn.proxy.example"))
    assert DEFAULT_SNIPPET_SRC.startswith("https://cdn.segment.com/analytics.js/v1/")


def test_no_tracker_renders_nothing_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="segment.core.web"):
        assert render_snippet(None) == ""
    assert "middleware" in caplog.text


class NonceHolder:
    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)


class Lazy:
    def __str__(self) -> str:
        return "lazy-nonce"


@pytest.mark.parametrize(
    ("where", "holder", "expected"),
    [
        ("csp_nonce", NonceHolder(csp_nonce="n1"), "n1"),
        ("csp_nonce", NonceHolder(csp_nonce=Lazy()), "lazy-nonce"),
        ("csp_nonce", NonceHolder(), None),
        ("csp_nonce", NonceHolder(csp_nonce=None), None),
        ("csp_nonce", NonceHolder(csp_nonce=""), None),
        ("state.csp_nonce", NonceHolder(state=NonceHolder(csp_nonce="n2")), "n2"),
        ("state.csp_nonce", NonceHolder(state=NonceHolder()), None),
        (lambda request: request.nonce, NonceHolder(nonce="n3"), "n3"),
        (None, NonceHolder(csp_nonce="n4"), None),
    ],
)
def test_find_csp_nonce(where: Any, holder: Any, expected: str | None) -> None:
    assert find_csp_nonce(holder, WebOptions(csp_nonce=where)) == expected


def test_a_failing_nonce_hook_is_logged_and_means_no_nonce(
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = WebOptions(csp_nonce=lambda request: 1 / 0)
    with caplog.at_level(logging.ERROR):
        assert find_csp_nonce(object(), options) is None
    assert "csp_nonce" in caplog.text


def test_csp_nonce_as_an_import_path() -> None:
    options = WebOptions.from_mapping({"CSP_NONCE": "tests.web.test_snippet:nonce_of"})
    assert find_csp_nonce(NonceHolder(token="t"), options) == "t"


def nonce_of(request: Any) -> str:
    return str(request.token)


def test_the_server_still_sends_no_page_call_when_the_browser_does(client: Client) -> None:
    from segment_core.testing import capture

    with capture() as sent:
        options = WebOptions(browser_write_key=KEY, page_source="browser")
        html = "text/html; charset=utf-8"
        assert (
            RequestTracker(client, options, make_request()).finish(200, content_type=html) is False
        )
        assert RequestTracker(client, WebOptions(), make_request()).finish(200, content_type=html)
    assert [m["type"] for m in sent] == ["page"]


def test_empty_strings_mean_unset() -> None:
    options = WebOptions.from_mapping(
        {"browser_write_key": "", "snippet_src": "", "browser_cdn": "", "browser_api_host": ""}
    )
    assert options.browser_write_key is None
    assert options.snippet_src == DEFAULT_SNIPPET_SRC
    assert (options.browser_cdn, options.browser_api_host) == (None, None)


# A reset link: a secret route parameter, a secret query parameter, and a referrer
# (a page of the same app) whose query holds a secret too.
RESET = {
    "path": "/reset/S3CR3T",
    "path_params": {"token": "S3CR3T"},
    "route_name": "password-reset",
    "query_string": "email=ann%40example.com&step=2",
    "headers": {"referer": "https://shop.example/account?token=abc&tab=1"},
}
RESET_URL = "https://shop.example/reset/S3CR3T?email=ann%40example.com&step=2#top"
REDACTED_FIELDS = {
    "path": "/reset/REDACTED",
    "search": "?email=REDACTED&step=2",
    "url": "https://shop.example/reset/REDACTED?email=REDACTED&step=2",
    "referrer": "https://shop.example/account?token=REDACTED&tab=1",
}


def test_a_page_with_secrets_hands_the_browser_the_servers_redacted_fields() -> None:
    settings = snippet_settings(render(**RESET))
    assert settings["pageFields"] == REDACTED_FIELDS
    assert "S3CR3T" not in json.dumps(settings) and "ann%40" not in json.dumps(settings)
    # Only what the server changed: the browser's own values are right for the rest.
    settings = snippet_settings(render(**{**RESET, "headers": {}, "query_string": "step=2"}))
    assert settings["pageFields"] == {
        "path": "/reset/REDACTED",
        "url": "https://shop.example/reset/REDACTED?step=2",
    }


def test_a_page_without_secrets_hands_the_browser_no_fields() -> None:
    settings = snippet_settings(
        render(query_string="q=shoes", headers={"referer": "https://search.example/?q=shoes"})
    )
    assert "pageFields" not in settings


def test_the_browsers_page_call_is_named_as_the_servers_would_be() -> None:
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    assert snippet_settings(render(options, **RESET))["pageName"] == "password-reset"
    by_path = WebOptions(browser_write_key=KEY, page_source="browser", page_name="path")
    assert snippet_settings(render(by_path, **RESET))["pageName"] == "/reset/REDACTED"
    # The server sends the page views: no name for a page call the browser does not make.
    assert "pageName" not in snippet_settings(render(**RESET))


def test_a_page_a_cache_may_share_holds_no_visitors_referrer_or_hook_name() -> None:
    options = WebOptions(browser_write_key=KEY, page_source="browser", page_name=lambda r: "n")
    tracker = RequestTracker(None, options, make_request(**RESET))
    settings = snippet_settings(render_snippet(tracker, shared=True))
    # The page's own fields are the same for every visitor a cache hands it to.
    assert settings["pageFields"] == {k: v for k, v in REDACTED_FIELDS.items() if k != "referrer"}
    assert "pageName" not in settings
    assert snippet_settings(render_snippet(tracker))["pageName"] == "n"


@needs_node
def test_the_loaders_page_call_and_events_carry_the_redacted_fields() -> None:
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    snippet = render(options, **RESET)
    referrer = "https://shop.example/account?token=abc&tab=1"
    here = {
        "path": "/reset/S3CR3T",
        "search": "?email=ann%40example.com&step=2",
        "url": RESET_URL.partition("#")[0],
        "referrer": referrer,
        "title": "Reset",
    }
    moved = {**here, "path": "/done", "search": "", "url": "https://shop.example/done"}
    events = [
        # analytics.js's events: on this page, and on one a single-page app moved to.
        {"type": "track", "context": {"page": here}},
        {"type": "page", "properties": {**here, "name": "Own"}, "context": {"page": here}},
        {"type": "track", "context": {"page": moved}},
    ]
    calls, (track, page, later) = run_loader_events(snippet, RESET_URL, referrer, events)
    assert calls == [["page", "password-reset", REDACTED_FIELDS]]
    assert track["context"]["page"] == {**REDACTED_FIELDS, "title": "Reset"}
    assert page["context"]["page"] == {**REDACTED_FIELDS, "title": "Reset"}
    assert page["properties"] == {**REDACTED_FIELDS, "title": "Reset", "name": "Own"}
    # Another page's own path and URL stay; the document's referrer is still this one's.
    assert later["context"]["page"] == {**moved, "referrer": REDACTED_FIELDS["referrer"]}


@needs_node
def test_a_query_a_single_page_app_changes_to_keeps_the_redacted_parts() -> None:
    snippet = render(**RESET)
    here = {
        "path": "/reset/S3CR3T",
        "search": "?email=ann%40example.com&step=2",
        "url": RESET_URL.partition("#")[0],
    }
    origin = "https://shop.example"

    def at(path: str, search: str, fragment: str = "") -> dict[str, Any]:
        return {"path": path, "search": search, "url": origin + path + search + fragment}

    events = [
        # history.replaceState: the query changes, the path stays.
        at(here["path"], "?tab=2"),
        # ... and keeps a parameter the server redacted, with the same value.
        at(here["path"], "?email=ann%40example.com&step=3"),
        # The path changes, the query stays.
        at("/done", here["search"]),
        at(here["path"], here["search"], "#top"),
        # A URL that is not the page's own parts (a canonical link's): the server's.
        {**here, "url": "https://canonical.example/reset"},
    ]
    _, processed = run_loader_events(
        snippet, RESET_URL, "", [{"type": "track", "context": {"page": p}} for p in events]
    )
    assert [event["context"]["page"] for event in processed] == [
        at("/reset/REDACTED", "?tab=2"),
        at("/reset/REDACTED", "?email=REDACTED&step=3"),
        at("/done", "?email=REDACTED&step=2"),
        at("/reset/REDACTED", "?email=REDACTED&step=2", "#top"),
        at("/reset/REDACTED", "?email=REDACTED&step=2"),
    ]


@needs_node
def test_the_loader_of_a_page_without_secrets_adds_no_middleware() -> None:
    snippet = render(WebOptions(browser_write_key=KEY, page_source="browser"), route_name=None)
    queued = run_loader(snippet, "")
    assert [call for call in queued if call[0] in ("page", "addSourceMiddleware")] == [
        ["page", "/products/<int:pk>"]
    ]


# The same page, at a URL and with a referrer, that also runs analytics.js's events
# through the source middlewares the loader queued, as analytics.js would.
_BROWSER_PAGE = """
var location = new URL(process.argv[1]);
var document = {
  cookie: "",
  referrer: process.argv[2],
  addEventListener: function () {},
  currentScript: null,
  createElement: function () { return {}; },
  head: { appendChild: function () {} },
};
var window = globalThis;
%s
var queued = window.analytics.filter(Array.isArray);
var events = JSON.parse(process.argv[3]).map(function (event) {
  queued.forEach(function (call) {
    if (call[0] !== "addSourceMiddleware") return;
    call[1]({ payload: { obj: event }, integrations: {}, next: function (p) { event = p.obj; } });
  });
  return event;
});
var pages = queued.filter(function (call) { return call[0] === "page"; });
console.log(JSON.stringify([pages, events]));
"""


def run_loader_events(
    snippet: str, url: str, referrer: str, events: list[dict[str, Any]]
) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    script = script_code(snippet)
    node = shutil.which("node") or "node"
    result = subprocess.run(
        [node, "-e", _BROWSER_PAGE % script, url, referrer, json.dumps(events)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    calls, processed = json.loads(result.stdout)
    return calls, processed


PREFETCH = {"sec-fetch-mode": "navigate", "sec-purpose": "prefetch"}


def test_a_prefetched_page_is_counted_by_the_browser_when_shown() -> None:
    # The server counts no prefetch; the browser may show it later without asking again.
    settings = snippet_settings(render(**{**RESET, "headers": {**RESET["headers"], **PREFETCH}}))
    assert (settings["page"], settings["prefetched"]) == (False, True)
    # As the server's page call would have been: its name and redacted fields.
    assert settings["pageName"] == "password-reset"
    assert settings["pageFields"] == REDACTED_FIELDS
    prerender = {**PREFETCH, "sec-purpose": "prefetch;prerender"}
    assert snippet_settings(render(headers=prerender))["prefetched"] is True
    # A navigation, a script's prefetch, a page the browser counts anyway: nothing to add.
    assert "prefetched" not in snippet_settings(render(headers={"sec-fetch-mode": "navigate"}))
    script = {"sec-fetch-mode": "cors", "purpose": "prefetch"}
    assert "prefetched" not in snippet_settings(render(headers=script))
    browser = WebOptions(browser_write_key=KEY, page_source="browser")
    assert "prefetched" not in snippet_settings(render(browser, headers=PREFETCH))


def test_a_page_a_cache_may_share_is_never_counted_as_prefetched() -> None:
    # Every visitor the cache answers is counted by the server: never twice.
    tracker = RequestTracker(
        None, WebOptions(browser_write_key=KEY), make_request(headers=PREFETCH)
    )
    settings = snippet_settings(render_snippet(tracker, shared=True))
    assert "prefetched" not in settings and settings["page"] is False


# The loader in a page the browser shows, maybe after prerendering it: the page
# calls queued before it is shown, and after.
_SHOWN_PAGE = """
var listeners = [];
var document = {
  cookie: "",
  referrer: "",
  prerendering: process.argv[1] === "prerendering",
  addEventListener: function (type, listener) { listeners.push([type, listener]); },
  currentScript: null,
  createElement: function () { return {}; },
  head: { appendChild: function () {} },
};
var location = new URL("https://shop.example/products/42");
var entries = JSON.parse(process.argv[2]);
Object.defineProperty(globalThis, "performance", {
  value: { getEntriesByType: function () { return entries; } },
  configurable: true,
});
var window = globalThis;
%s
function pages() {
  return window.analytics.filter(function (call) { return call[0] === "page"; }).length;
}
var before = pages();
document.prerendering = false;
listeners.forEach(function (listener) {
  if (listener[0] === "prerenderingchange") listener[1]();
});
console.log(JSON.stringify([before, pages()]));
"""


@needs_node
@pytest.mark.parametrize(
    ("source", "headers", "prerendering", "entries", "counted"),
    [
        # From the prefetch (speculation rules), or the browser does not say: the
        # server counted none of it.
        ("server", PREFETCH, "", [{"deliveryType": "navigational-prefetch"}], [1, 1]),
        ("server", PREFETCH, "", [{"deliveryType": "cache"}], [1, 1]),
        ("server", PREFETCH, "", [], [1, 1]),
        ("server", PREFETCH, "", [{"activationStart": 0}], [1, 1]),
        # Prerendered: counted once shown, never before (and never if never shown).
        ("server", PREFETCH, "prerendering", [{"deliveryType": ""}], [0, 1]),
        ("browser", {}, "prerendering", [], [0, 1]),
        ("server", PREFETCH, "", [{"deliveryType": "", "activationStart": 12.5}], [1, 1]),
        # Fetched for this navigation (a cache kept the prefetch's page): the server counted it.
        ("server", PREFETCH, "", [{"deliveryType": "", "activationStart": 0}], [0, 0]),
        ("server", {}, "", [], [0, 0]),
        ("browser", {}, "", [{"deliveryType": "", "activationStart": 0}], [1, 1]),
    ],
)
def test_the_loader_counts_a_page_when_it_is_shown(
    source: str,
    headers: dict[str, str],
    prerendering: str,
    entries: list[dict[str, Any]],
    counted: list[int],
) -> None:
    snippet = render(WebOptions(browser_write_key=KEY, page_source=source), headers=headers)
    node = shutil.which("node") or "node"
    script = _SHOWN_PAGE % script_code(snippet)
    result = subprocess.run(
        [node, "-e", script, prerendering, json.dumps(entries)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == counted


def pages_counted(prerendering: str, entries: list[dict[str, Any]], *, shared: bool) -> list[int]:
    """The page views the loader of a returning visitor's page queues before it is
    shown and after (see ``_SHOWN_PAGE``), the browser's navigation ``entries`` given."""
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY), make_request())
    snippet = str(render_snippet(tracker, shared=shared))
    # The visitor's cookie: a page a cache may share is made for any visitor.
    page = _SHOWN_PAGE.replace('cookie: "",', f'cookie: "ajs_anonymous_id={UUID}",')
    node = shutil.which("node") or "node"
    result = subprocess.run(
        [node, "-e", page % script_code(snippet), prerendering, json.dumps(entries)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    counted: list[int] = json.loads(result.stdout)
    return counted


@needs_node
@pytest.mark.parametrize(
    ("prerendering", "entries", "counted"),
    [
        # The copy a speculation rule prefetched, shown now: the server counted none.
        ("", [{"type": "navigate", "deliveryType": "navigational-prefetch"}], [1, 1]),
        # Prerendered: counted once shown.
        ("prerendering", [{"type": "navigate", "deliveryType": ""}], [0, 1]),
        ("", [{"type": "navigate", "deliveryType": "", "activationStart": 12.5}], [1, 1]),
        # Asked of the server for this navigation (from Django's cache too): its own.
        ("", [{"type": "navigate", "deliveryType": "", "transferSize": 5000}], [0, 0]),
    ],
)
def test_a_page_a_cache_may_share_is_counted_when_shown_from_a_prefetch(
    prerendering: str, entries: list[dict[str, Any]], counted: list[int]
) -> None:
    assert pages_counted(prerendering, entries, shared=True) == counted


@needs_node
@pytest.mark.parametrize("shared", [False, True], ids=["own page", "page a cache may share"])
@pytest.mark.parametrize(
    ("entries", "counted"),
    [
        # A link's visit the browser's HTTP cache answered: no server heard of it.
        ([{"type": "navigate", "deliveryType": "cache", "transferSize": 0}], [1, 1]),
        # Asked of the server (a 304's headers crossed the network), or Back.
        ([{"type": "navigate", "deliveryType": "cache", "transferSize": 300}], [0, 0]),
        ([{"type": "navigate", "deliveryType": "", "transferSize": 5000}], [0, 0]),
        ([{"type": "back_forward", "deliveryType": "cache", "transferSize": 0}], [0, 0]),
    ],
)
def test_the_loader_counts_a_visit_only_the_browser_s_cache_saw(
    shared: bool, entries: list[dict[str, Any]], counted: list[int]
) -> None:
    assert pages_counted("", entries, shared=shared) == counted


@pytest.mark.parametrize(
    ("options", "cookies", "handed"),
    [
        # The server's own cookie name, which it does not set: an id it made up for
        # this request would replace analytics.js's own on every page.
        ({"set_cookie": False, "cookie_name": "visitor"}, {}, False),
        ({"set_cookie": False, "cookie_name": "visitor"}, {"visitor": "null"}, False),
        # A cookie keeps it: the app's, the server's, or analytics.js's own.
        ({"set_cookie": False, "cookie_name": "visitor"}, {"visitor": UUID}, True),
        ({"set_cookie": False}, {}, True),
        ({"cookie_name": "visitor"}, {}, True),
    ],
)
def test_an_id_no_cookie_keeps_is_not_handed_to_analytics_js(
    options: dict[str, Any], cookies: dict[str, str], handed: bool
) -> None:
    tracker = RequestTracker(
        None, WebOptions(browser_write_key=KEY, **options), make_request(cookies=cookies)
    )
    settings = snippet_settings(render_snippet(tracker))
    assert settings["anonymousId"] == (tracker.analytics.anonymous_id if handed else None)
    assert "renewOnReset" not in settings or tracker.options.set_cookie


@pytest.mark.parametrize(
    ("cookie_name", "handed"), [("visitor_id", False), ("ajs_anonymous_id", True)]
)
def test_a_streamed_page_whose_headers_went_without_the_cookie_hands_no_made_up_id(
    cookie_name: str, handed: bool
) -> None:
    # A known user without the cookie: the headers went without it (no id used yet).
    options = WebOptions(browser_write_key=KEY, cookie_name=cookie_name)
    tracker = RequestTracker(None, options, make_request(user_id="u-42"))
    assert tracker.cookie_to_set() is None
    settings = snippet_settings(render_snippet(tracker))  # rendered in the body
    assert settings["anonymousId"] == (tracker.analytics.anonymous_id if handed else None)
    assert settings["userId"] == "u-42"


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("headers", [{}, {"sec-gpc": "1"}], ids=["loader", "inert"])
def test_the_snippet_is_well_formed_in_an_xhtml_page(shared: bool, headers: dict[str, str]) -> None:
    tracker = RequestTracker(
        None,
        WebOptions(browser_write_key=KEY, page_source="browser"),
        make_request(**{**RESET, "headers": headers}, user_id="a&b<c>]]>d"),
    )
    snippet = render_snippet(tracker, nonce="n&1", shared=shared)
    page = f'<html xmlns="http://www.w3.org/1999/xhtml"><head>{snippet}</head><body/></html>'
    [script] = ElementTree.fromstring(page).iter("{http://www.w3.org/1999/xhtml}script")
    assert script.get("nonce") == "n&1"
    # The script's text, as the XML parser hands it to JavaScript: the code itself.
    assert script.text == f"\n//\n{script_code(str(snippet))}\n//\n"


@needs_node
@pytest.mark.parametrize(
    ("options", "kept"),
    [
        ({}, UUID),  # the server's visitor
        ({"set_cookie": False, "cookie_name": "visitor"}, "new-id"),  # analytics.js's own
    ],
)
def test_the_logged_in_user_keeps_the_visitors_id(options: dict[str, Any], kept: str) -> None:
    request = make_request(user_id="42", cookies={"ajs_anonymous_id": UUID})
    tracker = RequestTracker(None, WebOptions(browser_write_key=KEY, **options), request)
    _, done = run_loader_page(str(render_snippet(tracker)), "", event="initialize")
    # analytics.js drops its anonymous id when the user changes: the loader restores it.
    # The other user's traits go, as analytics.js's identify drops them.
    assert done == ["user.id(42)", "user.traits({})", f"setAnonymousId({kept})"]


@needs_node
@pytest.mark.parametrize("logged_out", [False, True], ids=["no user", "logged out here"])
def test_the_page_a_logout_renders_names_no_user_the_browser_kept(logged_out: bool) -> None:
    request = make_request(cookies={"ajs_anonymous_id": UUID})
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    tracker = RequestTracker(Client("k", send=False), options, request)
    if logged_out:
        tracker.analytics.logout()
    # analytics.js's own cookie still names the user who was signed in.
    cookie = f"ajs_anonymous_id={UUID}; ajs_user_id=u-42"
    _, done = run_loader_page(str(render_snippet(tracker)), cookie, event="initialize")
    # Without a logout, a page made for no user leaves a user the browser knows alone
    # (a page the server does not sign in on).
    dropped = ["user.id(null)", "user.traits({})", f"setAnonymousId({UUID})"]
    assert done == (dropped if logged_out else [])


# Two snippets run in one document: the second while it loads (a template that has
# the snippet twice), once it has loaded (a script inserts another page's markup), or
# during a visit (a new page Turbo Drive shows in it).
_SECOND_SNIPPET = """
var errors = [];
var listeners = {};
var document = {
  cookie: "",
  referrer: "",
  readyState: "loading",
  addEventListener: function (type, listener) { listeners[type] = listener; },
  currentScript: null,
  createElement: function () { return {}; },
  getElementsByTagName: function () { return []; },
  head: { appendChild: function () {} },
};
function dispatch(type) {
  if (process.argv[2] === "visit") listeners[type]({ detail: { action: "advance" } });
}
var location = new URL("https://shop.example/products/42");
var window = globalThis;
console.error = function (message) { errors.push(message); };
var snippets = JSON.parse(process.argv[1]);
new Function(snippets[0])();
document.readyState = process.argv[2] === "loading" ? "loading" : "complete";
dispatch("turbo:visit");
new Function(snippets[1])();
dispatch("turbo:load");
var calls = window.analytics.filter(function (call) {
  return call[0] === "page" || (call[0] === "on" && call[1] === "initialize");
});
console.log(JSON.stringify([calls.map(function (call) { return call.slice(0, 2); }), errors]));
"""


FIRST = ["on", "initialize"]


@needs_node
@pytest.mark.parametrize(
    ("ready_state", "calls", "errors"),
    [
        # (The first page names no user, nor does a cookie: analytics.js is to keep
        # none, which it checks once initialized.)
        ("loading", [FIRST, ["page", "product-detail"]], ["Segment snippet included twice."]),
        ("complete", [FIRST, ["page", "product-detail"]], ["Segment snippet included twice."]),
        # A new page: its page view and its user, handed to the loader already there.
        (
            "visit",
            [FIRST, ["page", "product-detail"], ["on", "initialize"], ["page", "about"]],
            [],
        ),
    ],
)
def test_a_second_snippet_is_a_new_page_only_during_a_visit(
    ready_state: str, calls: list[list[str]], errors: list[str]
) -> None:
    options = WebOptions(browser_write_key=KEY, page_source="browser")
    first = script_code(render(options))
    second = script_code(render(options, route_name="about", user_id="42"))
    node = shutil.which("node") or "node"
    result = subprocess.run(
        [node, "-e", _SECOND_SNIPPET, json.dumps([first, second]), ready_state],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [calls, errors]


def test_without_the_servers_write_key_the_browser_sends_the_page_views(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing environment variable: the server discards its page views, so the
    # snippet's own page view takes their place (page_source "server" or not).
    monkeypatch.setattr(snippet_module, "_warned_pages_moved", False)
    options = WebOptions(browser_write_key=KEY)
    keyless = RequestTracker(Client(None), options, make_request())
    with caplog.at_level(logging.WARNING, logger="segment.core.web"):
        assert snippet_settings(render_snippet(keyless))["page"] is True
        assert snippet_settings(render_snippet(keyless))["page"] is True
    moved = [r for r in caplog.records if "sends no page views" in r.getMessage()]
    assert len(moved) == 1  # once
    # A server that sends, and one told to send nothing, keep their page views.
    for client in (Client("k", send=False), Client("server-key", host="http://127.0.0.1:9")):
        tracker = RequestTracker(client, options, make_request())
        assert snippet_settings(render_snippet(tracker))["page"] is False


@pytest.mark.parametrize(
    ("name", "value", "warned"),
    [
        ("browser_api_host", "http://api.proxy.example/v1", True),
        ("browser_cdn", "HTTP://cdn.proxy.example", True),
        ("snippet_src", "http://cdn.proxy.example/ajs/{write_key}.js", True),
        ("browser_api_host", "http://127.0.0.1:8765/v1", False),  # a local collector
        ("browser_cdn", "http://localhost:8000", False),
        ("browser_api_host", "https://api.proxy.example/v1", False),
        ("browser_api_host", "api.proxy.example/v1", False),  # https
    ],
)
def test_a_plain_http_url_of_another_machine_is_warned_about(
    name: str, value: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # An https page may neither load a script from it nor send to it (mixed content).
    with caplog.at_level(logging.WARNING, logger="segment.core.web"):
        WebOptions.from_mapping({"browser_write_key": KEY, name: value})
    lines = [r.getMessage() for r in caplog.records if "mixed content" in r.getMessage()]
    assert lines == (
        [
            f"segment: {name} {value!r} is not https: browsers refuse it on an https "
            "page (mixed content), and analytics.js would load or send nothing there"
        ]
        if warned
        else []
    )
