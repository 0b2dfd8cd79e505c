"""The campaign, address and canonical URL of analytics.js's events, beside the server's.

The settings the server hands the loader, and what the loader's source middleware
makes of analytics.js's events, run in Node.js with a page that has just enough of
a browser: its URL, its cookie and its canonical link. (Segment's own analytics.js
runs the same in headless Chromium: ``tests/browser/test_snippet_page_fields.py``.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import segment_core
from segment_core.client import Client
from segment_core.web import RequestTracker, WebOptions, render_snippet
from tests.web.conftest import make_request
from tests.web.snippets import script_code, snippet_settings

KEY = "browserKey123"
UUID = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="runs the loader in Node.js")

#: A campaign link whose content is a URL with a secret in its query.
CAMPAIGN_QUERY = "utm_source=mail&utm_content=https%3A%2F%2Fshop.example%2Freset%3Ftoken%3DABC"
REDACTED_CAMPAIGN_QUERY = CAMPAIGN_QUERY.replace("ABC", "REDACTED")
REDACTED_CAMPAIGN = {"source": "mail", "content": "https://shop.example/reset?token=REDACTED"}
#: A reset link: a secret route parameter and a secret query parameter.
RESET = {
    "path": "/reset/S3CR3T",
    "path_params": {"token": "S3CR3T"},
    "query_string": "email=ann%40example.com&step=2",
}
RESET_URL = "https://shop.example/reset/S3CR3T?email=ann%40example.com&step=2"
REDACTED_PAGE = {
    "path": "/reset/REDACTED",
    "search": "?email=REDACTED&step=2",
    "url": "https://shop.example/reset/REDACTED?email=REDACTED&step=2",
}


@pytest.fixture(autouse=True)
def _default_client_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pages of ``RequestTracker(None, ...)`` follow the default client: one that is
    not diverted (a diverted one's pages get the inert stub)."""
    client = Client("test-key", send=False)
    monkeypatch.setattr(segment_core, "default_client", client)
    yield
    client.shutdown(timeout=1)


def render(options: WebOptions | None = None, *, shared: bool = False, **request: Any) -> str:
    options = options or WebOptions(browser_write_key=KEY)
    tracker = RequestTracker(None, options, make_request(**request))
    return str(render_snippet(tracker, shared=shared))


def test_a_campaign_with_secrets_hands_the_browser_only_the_redacted_query() -> None:
    settings = snippet_settings(render(query_string=CAMPAIGN_QUERY))
    assert settings["pageFields"]["search"] == "?" + REDACTED_CAMPAIGN_QUERY
    assert "ABC" not in json.dumps(settings)
    # The same in a page a cache may share: it is the page's, not the visitor's.
    shared = snippet_settings(render(shared=True, query_string=CAMPAIGN_QUERY))
    assert shared["pageFields"]["search"] == "?" + REDACTED_CAMPAIGN_QUERY
    assert "ABC" not in json.dumps(shared)


@pytest.mark.parametrize(
    ("options", "shared", "address"),
    [
        ({}, False, None),
        ({"collect_ip": False}, False, "0.0.0.0"),
        ({"collect_ip": False}, True, "0.0.0.0"),
        ({"anonymize_ip": True}, False, "203.0.113.0"),
        # A page a cache may share names no visitor, nor their address.
        ({"anonymize_ip": True}, True, "0.0.0.0"),
        ({"anonymize_ip": True, "trusted_proxies": 1}, False, "198.51.100.0"),
    ],
    ids=[
        "default",
        "no-ip",
        "no-ip-shared",
        "anonymized",
        "anonymized-shared",
        "anonymized-behind-a-proxy",
    ],
)
def test_the_browser_gets_the_address_the_servers_calls_carry(
    options: dict[str, Any], shared: bool, address: str | None
) -> None:
    headers = {"x-forwarded-for": "198.51.100.23"}
    snippet = render(WebOptions(browser_write_key=KEY, **options), shared=shared, headers=headers)
    assert snippet_settings(snippet).get("ip") == address


# A page with just enough of a browser for the loader (its URL, cookie and canonical
# link), that runs analytics.js's events through the source middlewares the loader
# queued, as analytics.js would.
_BROWSER_PAGE = """
var location = new URL(process.argv[1]);
var canonical = process.argv[2];
var document = {
  cookie: process.argv[3],
  referrer: "",
  addEventListener: function () {},
  currentScript: null,
  createElement: function () { return {}; },
  head: { appendChild: function () {} },
  querySelector: function (selector) {
    if (selector !== "link[rel='canonical']" || !canonical) return null;
    return { getAttribute: function (name) { return name === "href" ? canonical : null; } };
  },
};
var window = globalThis;
%s
var queued = window.analytics.filter(Array.isArray);
var events = JSON.parse(process.argv[4]).map(function (event) {
  queued.forEach(function (call) {
    if (call[0] !== "addSourceMiddleware") return;
    call[1]({ payload: { obj: event }, integrations: {}, next: function (p) { event = p.obj; } });
  });
  return event;
});
console.log(JSON.stringify(events));
"""


def run_events(
    snippet: str,
    url: str,
    events: list[dict[str, Any]],
    *,
    canonical: str = "",
    cookie: str = "",
) -> list[dict[str, Any]]:
    """``events`` as the loader's middlewares pass them on, on a page at ``url``."""
    node = shutil.which("node") or "node"
    argv = [url, canonical, cookie, json.dumps(events)]
    result = subprocess.run(
        [node, "-e", _BROWSER_PAGE % script_code(snippet), *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    processed: list[dict[str, Any]] = json.loads(result.stdout)
    return processed


def track(page: dict[str, str], **context: Any) -> dict[str, Any]:
    return {"type": "track", "context": {"page": page, **context}}


def reported(search: str, canonical: str) -> dict[str, str]:
    """The page fields analytics.js reports at a query, under a ``canonical`` link (a
    relative one is not parsed)."""
    path = urlsplit(canonical).path if "://" in canonical else canonical
    url = canonical if "?" in canonical else canonical + search
    return {"path": path, "search": search, "url": url}


@needs_node
@pytest.mark.parametrize(
    "canonical",
    [
        "https://shop.example/reset/S3CR3T?email=ann%40example.com",  # without step=2
        "https://shop.example/reset/S3CR3T?page=1",
        "https://shop.example/reset/S3CR3T/",
        "/reset/S3CR3T/",
        "https://canonical.example/reset",
    ],
)
def test_a_canonical_link_of_a_page_with_secrets_reports_the_servers_url(
    canonical: str,
) -> None:
    here = reported("?" + RESET["query_string"], canonical)
    [event] = run_events(render(**RESET), RESET_URL, [track(here)], canonical=canonical)
    assert event["context"]["page"] == REDACTED_PAGE


@needs_node
def test_a_query_a_page_changes_to_under_a_canonical_link_loses_what_cannot_be_mapped() -> None:
    snippet = render(**RESET)
    sent = []
    for canonical in (
        # A canonical link with a query of its own: its URL is not the page's parts.
        "https://shop.example/reset/S3CR3T?email=ann%40example.com",
        # One that names the page otherwise: the page's path, redacted, and the new query.
        "https://shop.example/reset/S3CR3T/",
    ):
        moved = track(reported("?tab=2", canonical))
        [event] = run_events(snippet, RESET_URL, [moved], canonical=canonical)
        sent.append(event["context"]["page"])
    assert sent == [
        {"path": "/reset/REDACTED", "search": "?tab=2"},
        {
            "path": "/reset/REDACTED",
            "search": "?tab=2",
            "url": "https://shop.example/reset/REDACTED?tab=2",
        },
    ]


@needs_node
def test_a_parameter_the_server_redacted_stays_redacted_whatever_value_the_page_gives_it() -> None:
    # A single-page app moves to a query of its own: the server's secret names hold
    # there too, not only the values it saw.
    moved = "?step=3&email=bob%40example.com&email=&x=1&email"
    page = {"path": "/reset/S3CR3T", "search": moved, "url": RESET_URL.split("?")[0] + moved}
    [event] = run_events(render(**RESET), RESET_URL, [track(page)])
    assert event["context"]["page"] == {
        "path": "/reset/REDACTED",
        "search": "?step=3&email=REDACTED&email=REDACTED&x=1&email",
        "url": "https://shop.example/reset/REDACTED?step=3&email=REDACTED&email=REDACTED&x=1&email",
    }


@needs_node
@pytest.mark.parametrize("separator", ["&", ";"])
def test_a_parameter_redacted_in_a_query_of_either_separator_stays_redacted(
    separator: str,
) -> None:
    query = separator.join(["a=1", "token=abc", "b=2"])
    url = "https://shop.example/?" + query
    moved = "?" + separator.join(["a=2", "token=NEW", "b=2", "c=3"])
    page = {"path": "/", "search": moved, "url": "https://shop.example/" + moved}
    [event] = run_events(render(path="/", query_string=query), url, [track(page)])
    expected = "?" + separator.join(["a=2", "token=REDACTED", "b=2", "c=3"])
    assert event["context"]["page"]["search"] == expected
    assert "NEW" not in json.dumps(event)


@needs_node
def test_the_campaign_follows_the_query_the_loader_redacted() -> None:
    url = "https://shop.example/?" + CAMPAIGN_QUERY
    snippet = render(path="/", query_string=CAMPAIGN_QUERY)
    secret_campaign = {"source": "mail", "content": "https://shop.example/reset?token=ABC"}
    own = {"path": "/", "search": "?" + CAMPAIGN_QUERY, "url": url}
    changed_query = "?utm_source=news&" + CAMPAIGN_QUERY.partition("&")[2]
    changed = {"path": "/", "search": changed_query, "url": "https://shop.example/" + changed_query}
    clear = {
        "path": "/",
        "search": "?utm_source=news",
        "url": "https://shop.example/?utm_source=news",
    }
    events = [
        track(own, campaign=secret_campaign),
        # A query the page changed to, which keeps a value the server redacted.
        track(changed, campaign={**secret_campaign, "source": "news"}),
        # One without it: analytics.js's campaign of it is the page's own.
        track(clear, campaign={"source": "news"}),
    ]
    processed = run_events(snippet, url, events)
    assert [event["context"].get("campaign") for event in processed] == [
        REDACTED_CAMPAIGN,
        None,
        {"source": "news"},
    ]
    assert "ABC" not in json.dumps(processed)


@needs_node
@pytest.mark.parametrize(
    ("query", "read_by_analytics_js", "sent"),
    [
        # A parameter whose name holds "utm_" without starting with it.
        ("my_utm_token=SECRET1", {"tm_token": "SECRET1"}, {"tm_token": "REDACTED"}),
        # A "?" inside the query, which analytics.js reads as "&".
        ("a=b?utm_token=SECRET2", {"token": "SECRET2"}, {"token": "REDACTED"}),
        # A nested query left unescaped, which the server escapes as it redacts it.
        ("next=/w?utm_email=SECRET3%40x.com", {"email": "SECRET3@x.com"}, {}),
        # A secret in a value; the other values as analytics.js decodes them.
        (
            "utm_term=50%25+off&utm_medium=a%ZZ&" + CAMPAIGN_QUERY.replace("ABC", "SECRET4"),
            {
                "term": "50% off",
                "medium": "a%ZZ",
                "source": "mail",
                "content": "https://shop.example/reset?token=SECRET4",
            },
            {"term": "50% off", "medium": "a%ZZ", **REDACTED_CAMPAIGN},
        ),
        # No campaign in the query: analytics.js's empty one.
        ("token=SECRET5", {}, {}),
    ],
    ids=["utm-inside-a-name", "question-mark", "nested-query", "secret-value", "no-campaign"],
)
def test_the_campaign_of_a_redacted_query_is_read_from_the_servers_query(
    query: str, read_by_analytics_js: dict[str, str], sent: dict[str, str]
) -> None:
    url = "https://shop.example/?" + query
    own = {"path": "/", "search": "?" + query, "url": url}
    [event] = run_events(
        render(path="/", query_string=query), url, [track(own, campaign=read_by_analytics_js)]
    )
    assert event["context"]["page"]["search"] != own["search"]
    assert event["context"]["campaign"] == sent
    assert "SECRET" not in json.dumps(event)


@needs_node
def test_the_browsers_events_carry_the_servers_address() -> None:
    here = {"path": "/products/42", "search": "", "url": "https://shop.example/products/42"}
    url = here["url"]
    no_ip = render(WebOptions(browser_write_key=KEY, collect_ip=False))
    [event] = run_events(no_ip, url, [track(here)])
    assert event["context"]["ip"] == "0.0.0.0"
    anonymized = render(
        WebOptions(browser_write_key=KEY, anonymize_ip=True), cookies={"ajs_anonymous_id": UUID}
    )
    [event] = run_events(anonymized, url, [track(here)], cookie=f"ajs_anonymous_id={UUID}")
    assert event["context"]["ip"] == "203.0.113.0"
    # A page made for another visitor (a template fragment cache kept it): not their address.
    [event] = run_events(anonymized, url, [track(here)], cookie="ajs_anonymous_id=another-visitor")
    assert event["context"]["ip"] == "0.0.0.0"
    [event] = run_events(render(), url, [track(here)])
    assert "ip" not in event["context"]
