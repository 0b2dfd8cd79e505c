"""What a visitor sends is bounded: in bytes in every message, and in the memory of caches."""

from __future__ import annotations

import decimal
import gc
import json
import logging
import tracemalloc
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import pytest

from segment_core.batching import MAX_MESSAGE_BYTES
from segment_core.client import Client
from segment_core.errors import InvalidMessage
from segment_core.scope import Analytics
from segment_core.testing import capture
from segment_core.web import (
    BotMatcher,
    Redactor,
    RequestInfo,
    RequestTracker,
    WebOptions,
    campaign,
    checked_host,
    client_ip,
    forwarded_origin,
    page_fields,
    request_context,
    wire_path,
)
from segment_core.web._bots import MAX_SEARCHED
from segment_core.web._context import MAX_CONTEXT_BYTES, MAX_REDACTED, encoded_size
from segment_core.web._forwarded import MAX_HOPS, forwarded_hops
from segment_core.web._identity import parse_id_cookie
from segment_core.web._page import accepts_document
from segment_core.web._request import (
    MAX_CACHED_LENGTH,
    cached_for_short_text,
    request_wire_path,
    short_value_cache,
)
from tests.web.conftest import BROWSER, make_request

Messages = list[dict[str, Any]]
HTML = "text/html; charset=utf-8"


def heavy_request(text: str = "\\", **overrides: Any) -> RequestInfo:
    """Every field at its size in characters, of characters that weigh more encoded:
    within what servers accept by default (a request line under 4 KB)."""
    values: dict[str, Any] = {
        "path": "/" + "a" * 2047,
        "query_string": "q=" + text * 1900,
        "headers": {
            "referer": "https://ex.example/" + text * 2030,
            "user-agent": "Mozilla/5.0 " + text * 500,
            "accept": "text/html",
        },
    }
    values.update(overrides)
    return make_request(**values)


def size_of(message: Mapping[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False).encode())


# -- the context's budget ---------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["\\", '"', "\u00e9", "\u20ac", "\U0001f600", "\x01", "\ud800"], ids=repr
)
def test_a_context_weighs_its_budget_at_most(text: str) -> None:
    request = heavy_request(text, query_string="utm_campaign=x&q=" + text * 1900)
    context = request_context(request, WebOptions())
    assert encoded_size(context) <= MAX_CONTEXT_BYTES
    page = context["page"]
    # What was cut is cut alike in search and url, never in the middle of an escape.
    assert page["url"] == f"https://shop.example{page['path']}{page['search']}"
    uncut = page_fields(request, WebOptions().redactor)
    for name in ("path", "search", "referrer"):
        assert uncut[name].startswith(page[name])
    assert request.headers["user-agent"].startswith(context.get("userAgent", ""))


def test_the_referrer_gives_way_first() -> None:
    request = heavy_request()
    context = request_context(request, WebOptions())
    page = context["page"]
    assert page["referrer"] == ""
    assert page["search"].startswith("?q=\\\\") and len(page["search"]) < 1 + 2 + 1900
    # The page itself, and the browser, stay whole.
    assert page["path"] == request.path and context["userAgent"] == request.headers["user-agent"]


def test_an_ordinary_context_is_left_as_it_is() -> None:
    request = make_request(
        query_string="q=caf%C3%A9&utm_source=news",
        headers={"referer": "https://www.example/search?q=" + "\u00e9" * 300},
    )
    context = request_context(request, WebOptions())
    assert context["page"] == page_fields(request, WebOptions().redactor)
    assert context["userAgent"] == BROWSER and context["campaign"] == {"source": "news"}


def test_route_secrets_found_later_keep_the_context_within_its_budget(
    client: Client, sent: Messages
) -> None:
    def router(path: str) -> Mapping[str, Any]:
        return {"token": "aaaa"}

    request = heavy_request(route_of_path=router)
    tracker = RequestTracker(client, WebOptions(), request, read_route=lambda request, final: False)
    tracker.analytics.track("Viewed")  # before routing: the route is guessed
    tracker.finish(200, content_type=HTML)
    viewed, page = sent
    assert "aaaa" not in json.dumps(viewed["context"])  # (the ids are random hex)
    context = {key: value for key, value in viewed["context"].items() if key != "library"}
    assert encoded_size(context) <= MAX_CONTEXT_BYTES
    assert page["type"] == "page" and size_of(page) <= MAX_MESSAGE_BYTES


@pytest.mark.parametrize("text", ["\\", "\u20ac", "\x01"], ids=repr)
def test_a_views_call_keeps_more_than_half_a_message_beside_any_request(
    client: Client, sent: Messages, text: str
) -> None:
    tracker = RequestTracker(client, WebOptions(), heavy_request(text))
    properties = {"items": ["x" * 100] * 160}  # 16.5 KB, half of what a message may be
    tracker.analytics.track("Cart Viewed", properties)
    assert tracker.finish(200, content_type=HTML) is True
    viewed, page = sent
    assert viewed["properties"] == properties
    # The page call carries the page fields twice, and is sent whole.
    assert page["properties"]["url"] == page["context"]["page"]["url"]
    assert size_of(page) <= MAX_MESSAGE_BYTES


@pytest.mark.parametrize("call", ["track", "page", "identify", "screen", "group"])
def test_a_views_valid_call_fits_beside_whatever_the_visitor_sent(
    client: Client, sent: Messages, call: str
) -> None:
    """The visitor's part of the context gives way to the call's own data, however
    near the limit that is: what the visitor sent never makes a valid call fail."""
    query = "utm_campaign=" + "%22" * 3000 + "&q=" + "\\" * 1900
    tracker = RequestTracker(client, WebOptions(), heavy_request(query_string=query))
    own = {"items": ["x" * 100] * 230}  # 23.7 KB of the app's own data
    analytics = tracker.analytics
    {
        "track": lambda: analytics.track("Catalog Viewed", own),
        "page": lambda: analytics.page("Catalog", own),
        "identify": lambda: analytics.identify("u1", own),
        "screen": lambda: analytics.screen("Catalog", own),
        "group": lambda: analytics.group("g1", own),
    }[call]()
    [message] = sent
    assert {**message.get("properties", {}), **message.get("traits", {})}.items() >= own.items()
    assert len(json.dumps(message, separators=(",", ":")).encode()) <= MAX_MESSAGE_BYTES
    assert message["context"]["page"]["path"].startswith("/aaa")  # cut as little as needed
    assert tracker.analytics.context["page"]["referrer"].startswith("https://ex.example/")


def test_only_what_the_visitor_sent_gives_way_never_the_call_s_own_context(
    client: Client, sent: Messages
) -> None:
    query = "utm_campaign=" + "%22" * 3000 + "&q=" + "\\" * 1900
    tracker = RequestTracker(client, WebOptions(), heavy_request(query_string=query))
    own = {"items": ["x" * 100] * 230}
    campaign = {"name": "spring-" + "s" * 600, "source": "crm"}
    extra = {"campaign": campaign, "traits": {"ltv": decimal.Decimal("12.50")}}
    tracker.analytics.track("Catalog Viewed", own, context=extra)
    [message] = sent
    assert message["context"]["campaign"] == campaign  # the call's own, whole
    assert message["context"]["traits"] == {"ltv": 12.5}
    assert len(json.dumps(message, separators=(",", ":")).encode()) <= MAX_MESSAGE_BYTES


def test_a_call_cut_to_fit_is_one_message_to_before_send_and_blames_no_hook(
    sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str]] = []

    def scrub(message: dict[str, Any]) -> dict[str, Any]:
        seen.append((message["messageId"], message["timestamp"]))
        return message

    hooked = Client("k", send=False, before_send=scrub)
    query = "utm_campaign=" + "%22" * 3000
    tracker = RequestTracker(hooked, WebOptions(), heavy_request(query_string=query))
    with capture() as events, caplog.at_level(logging.WARNING):
        tracker.analytics.track("Catalog Viewed", {"items": ["x" * 100] * 300})
    [message] = events
    assert {(message["messageId"], message["timestamp"])} == set(seen)
    assert not [r for r in caplog.records if r.name.startswith("segment")]


def test_outside_a_request_nothing_is_cut(client: Client) -> None:
    """A job's visitor (a snapshot) or an object the app made: what it holds is not
    known to be a visitor's: a call too big raises, as the client's own would."""
    snapshot = {"version": 1, "anonymousId": "a1", "context": {"page": {"referrer": "r" * 2000}}}
    visitor = Analytics.from_snapshot(snapshot, client)
    with pytest.raises(InvalidMessage, match=r"the largest part: properties\.items"):
        visitor.track("Export", {"items": ["x" * 100] * 305})


def test_a_call_too_big_of_its_own_data_still_raises_naming_it(client: Client) -> None:
    tracker = RequestTracker(client, WebOptions(), make_request())
    with pytest.raises(InvalidMessage, match=r"the largest part: properties\.items"):
        tracker.analytics.track("Catalog Viewed", {"items": ["x" * 100] * 330})


def test_a_page_call_the_view_made_too_big_goes_without_its_repeated_fields(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = RequestTracker(client, WebOptions(), heavy_request())
    tracker.analytics.context["app"] = {"build": "b" * 12_000}
    with caplog.at_level(logging.WARNING):
        assert tracker.finish(200, content_type=HTML) is True
    [page] = sent
    assert set(page["properties"]) == {"path", "name"}
    assert page["context"]["page"]["url"].startswith("https://shop.example/aaa")
    [record] = [r for r in caplog.records if r.name.startswith("segment")]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "sent without its search, referrer, url properties" in record.getMessage()


def test_a_page_call_too_big_without_them_is_logged_in_one_line(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = RequestTracker(client, WebOptions(), heavy_request())
    tracker.analytics.context["app"] = {"build": "b" * 33_000}  # too big of its own
    with caplog.at_level(logging.WARNING):
        assert tracker.finish(200, content_type=HTML) is False
    assert sent == []
    [record] = [r for r in caplog.records if r.name.startswith("segment")]
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert "automatic page call for /aaa" in record.getMessage()
    assert "bytes encoded" in record.getMessage()


# -- caches ---------------------------------------------------------------------------


def _cache_users() -> dict[str, Callable[[str], object]]:
    bots, redactor = BotMatcher(), Redactor()
    return {
        "wire_path of text": lambda value: wire_path("/" + value),
        "wire_path of bytes": lambda value: wire_path(("/" + value).encode()),
        "request_wire_path": lambda value: request_wire_path("", ("/" + value).encode()),
        "checked_host": checked_host,
        "bot user agents": bots.matches,
        "secret names": redactor.is_secret,
        "campaign": lambda value: campaign("utm_source=" + value[:2000]),
        "id cookie": parse_id_cookie,
        "Accept": lambda value: accepts_document(value, WebOptions()),
        "Forwarded": lambda value: forwarded_hops(
            make_request(headers={"forwarded": f'for="{value}"'})
        ),
    }


@pytest.mark.parametrize("use", list(_cache_users()))
def test_long_values_a_visitor_sends_leave_no_memory_behind(use: str) -> None:
    answer = _cache_users()[use]
    answer("warm-up" + "v" * 8000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(200):
            answer(f"{number}-" + "v" * 8000)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 100_000  # where the values kept would take 1.6 MB at least


def test_a_short_value_cache_keeps_short_values_up_to_its_size() -> None:
    calls: list[str] = []

    @short_value_cache(maxsize=3)
    def upper(text: str) -> str:
        """The text in capitals."""
        calls.append(text)
        return text.upper()

    long_text = "x" * (MAX_CACHED_LENGTH + 1)
    assert [upper("a"), upper("a"), upper(long_text), upper(long_text)] == [
        "A",
        "A",
        long_text.upper(),
        long_text.upper(),
    ]
    assert calls == ["a", long_text, long_text]
    for text in "bcde":
        upper(text)
    assert 0 < len(upper) <= 3 and "e" in upper
    assert upper.__doc__ == "The text in capitals." and "upper" in repr(upper)


def test_a_lookup_cached_by_its_arguments_keeps_no_long_text() -> None:
    calls: list[tuple[object, str]] = []

    @cached_for_short_text(maxsize=4)
    def lookup(owner: object, path: str) -> int:
        """The length of the path."""
        calls.append((owner, path))
        return len(path)

    long_path = "/" + "x" * MAX_CACHED_LENGTH
    assert [lookup(1, "/a"), lookup(1, "/a"), lookup(1, long_path), lookup(1, long_path)] == [
        2,
        2,
        len(long_path),
        len(long_path),
    ]
    assert calls == [(1, "/a"), (1, long_path), (1, long_path)]
    assert lookup.__doc__ == "The length of the path."


class CountingRedactor(Redactor):
    """A redactor that counts the names it judges."""

    judged = 0

    def is_secret(self, name: str) -> bool:
        CountingRedactor.judged += 1
        return super().is_secret(name)


@pytest.mark.parametrize("where", ["query", "referrer"])
def test_a_huge_query_or_referrer_costs_no_more_than_what_is_kept(where: str) -> None:
    # Every name is judged (and a value that is a URL or JSON read): 700 KB of
    # distinct names (gunicorn joins a Referer sent on 90 lines) would hold the worker
    # for seconds. What is read is bounded (MAX_REDACTED), then cut to what is kept.
    query = "&".join(f"x{n}y=1" for n in range(100_000)) + "&token=secret"
    if where == "query":
        request = make_request(query_string=query)
    else:
        request = make_request(headers={"referer": f"https://other.example/?{query}"})
    options = WebOptions()
    object.__setattr__(options, "redactor", CountingRedactor())
    CountingRedactor.judged = 0
    fields = page_fields(request, options.redactor)
    kept = fields["search"] if where == "query" else fields["referrer"]
    assert 0 < len(kept) <= 2048 + len("?")
    assert "secret" not in kept
    assert CountingRedactor.judged <= MAX_REDACTED // len("x1y=1&")


def test_a_graphql_document_after_its_variables_in_a_long_query_still_keeps_them_secret() -> None:
    # The variables are secret because the document passes them to a secret argument:
    # a document past what the event keeps is read all the same.
    variables = '{"t": "rst_9f8e7d6c5b4a3210"}'
    document = "mutation Reset($t: String!) { resetPassword(resetToken: $t) { ok } }"
    query = urlencode({"variables": variables, "extensions": "x" * 3000, "query": document})
    for request in (
        make_request(query_string=query),
        make_request(headers={"referer": f"https://api.partner.example/graphql?{query}"}),
    ):
        fields = page_fields(request, WebOptions().redactor)
        assert "rst_9f8e7d6c5b4a3210" not in fields["search"] + fields["referrer"]
        assert "REDACTED" in fields["search"] + fields["referrer"]


def test_a_long_secret_value_is_redacted_whole_and_the_parameters_after_it_are_kept() -> None:
    # A JSON Web Token or a SAML response longer than what is read to be redacted:
    # its value is redacted whatever it holds, and the campaign after it is kept.
    token = "eyJ" + "a" * (MAX_REDACTED + 1000)
    query = f"id_token={token}&SAMLResponse={token}&q=shoes&utm_source=newsletter"
    kept = "id_token=REDACTED&SAMLResponse=REDACTED&q=shoes&utm_source=newsletter"
    redactor = WebOptions().redactor
    fields = page_fields(make_request(query_string=query), redactor)
    assert fields["search"] == f"?{kept}"
    referred = make_request(headers={"referer": f"https://idp.example/cb?{query}"})
    assert page_fields(referred, redactor)["referrer"] == f"https://idp.example/cb?{kept}"


def test_a_long_value_of_a_harmless_name_is_cut_as_before() -> None:
    query = f"q={'x' * (MAX_REDACTED + 1000)}&token=secret&utm_source=n"
    fields = page_fields(make_request(query_string=query), WebOptions().redactor)
    assert fields["search"] == "?q=" + "x" * 2046


def test_of_a_huge_forwarding_header_the_hops_nearest_the_app_are_read() -> None:
    # A client may claim any hops before the proxies append theirs; only the
    # rightmost MAX_HOPS are parsed (a 700 KB header took the worker a second).
    claimed = ",".join(f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in range(90_000))
    xff = f"{claimed}, 198.51.100.7, 203.0.113.1"
    request = make_request(headers={"x-forwarded-for": xff}, client_addr="203.0.113.2")
    hops = forwarded_hops(request)
    assert len(hops) == MAX_HOPS
    assert [str(hop) for hop in hops[-2:]] == ["198.51.100.7", "203.0.113.1"]
    assert str(client_ip(request, 2)) == "198.51.100.7"
    forwarded = ", ".join(f"for=10.0.0.{n % 256}" for n in range(50_000))
    request = make_request(
        headers={"forwarded": f'{forwarded}, for="[2001:db8::7]";proto=https;host=shop.example'},
        client_addr="203.0.113.2",
    )
    assert str(client_ip(request, 1)) == "2001:db8::7"
    assert forwarded_origin(request, 1) == ("https", "shop.example")
    # A short header is read whole.
    short = ",".join(["198.51.100.7"] * (MAX_HOPS + 5))
    assert len(forwarded_hops(make_request(headers={"x-forwarded-for": short}))) == MAX_HOPS + 5


def test_a_bot_is_known_by_the_start_of_its_user_agent() -> None:
    # What is searched is bounded: far more than any real client's User-Agent.
    bots = BotMatcher()
    assert bots.matches("Mozilla/5.0 (compatible; Googlebot/2.1) " + "x" * 100_000)
    assert not bots.matches("Mozilla/5.0 " + "x" * MAX_SEARCHED + " Googlebot/2.1")


def test_a_bot_s_user_agent_in_utf_8_is_searched_as_the_context_sends_it() -> None:
    # Servers hand header bytes on as latin-1; the context reads UTF-8 back.
    user_agent = "Mozilla/5.0 (compatible; ЯндексБот/3.0)"
    bots = BotMatcher(["Яндекс"])
    assert bots.matches(user_agent.encode().decode("latin-1"))
    assert bots.matches(user_agent)
    assert not bots.matches("Mozilla/5.0 (compatible; Googlebot/2.1)")
    # Decoded, then cut: a character the cut would split is no matter.
    long = (user_agent + " " + "é" * 1100).encode().decode("latin-1")
    assert bots.matches(long)
    # Of a User-Agent of any length, what its searched characters can take at most
    # is decoded, cut where a character begins.
    for filler in ("é" * 500_000, "a" + "é" * 500_000, "ab" + "€" * 400_000):
        assert bots.matches((user_agent + filler).encode().decode("latin-1"))
    # Its control characters as the context sends them: one space a run.
    assert BotMatcher(["Foo Fetcher"]).matches("Mozilla/5.0 Foo\tFetcher/1.0")


def test_a_call_cut_to_fit_fits_with_what_before_send_adds_and_goes_through_it() -> None:
    def scrub(message: dict[str, Any]) -> dict[str, Any]:
        properties = dict(message["properties"])
        properties["email"] = "hashed:" + "0" * 64  # longer than what it replaces
        properties["audit"] = "a" * 3000
        return {**message, "properties": properties}

    hooked = Client("k", send=False, before_send=scrub)
    query = "utm_campaign=" + "%22" * 3000 + "&q=" + "\\\\" * 1900
    tracker = RequestTracker(hooked, WebOptions(), heavy_request(query_string=query))
    with capture() as events:
        tracker.analytics.track("Export", {"email": "ada@example.com", "rows": ["x" * 100] * 220})
    [message] = events
    assert message["properties"]["email"].startswith("hashed:")
    assert len(json.dumps(message, separators=(",", ":")).encode()) <= MAX_MESSAGE_BYTES


def test_a_view_s_page_cut_to_fit_is_one_message_to_before_send() -> None:
    seen: list[str] = []

    def keep(message: dict[str, Any]) -> dict[str, Any]:
        seen.append(message["messageId"])
        return message

    hooked = Client("k", send=False, before_send=keep)
    query = "utm_campaign=" + "%22" * 3000 + "&q=" + "\\\\" * 1900
    tracker = RequestTracker(hooked, WebOptions(), heavy_request(query_string=query))
    with capture() as events:
        tracker.analytics.page("Catalog", {"items": ["x" * 100] * 260})
    [message] = events
    assert set(seen) == {message["messageId"]}
