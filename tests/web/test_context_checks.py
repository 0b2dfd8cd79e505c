"""A request's context is checked against the Spec once, when it is built: the
calls that carry it as built skip the check, and any change brings it back."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from segment_core.client import Client
from segment_core.errors import InvalidMessage
from segment_core.spec import content_problems, validate_message
from segment_core.web import RequestTracker, WebOptions, request_context
from tests.web.conftest import make_request

Messages = list[dict[str, Any]]
HTML = "text/html; charset=utf-8"

HOSTILE_REQUESTS: list[dict[str, Any]] = [
    {"client_addr": None, "headers": {"user-agent": ""}},
    {"client_addr": "not an address"},
    {"client_addr": "fe80::1%eth0"},
    {"client_addr": "::ffff:203.0.113.7"},
    {"client_addr": "203.0.113.7", "headers": {"x-forwarded-for": "evil, 300.1.1.1, ::1"}},
    {"host": "ex\u00e4mple.com:99999", "path": "/\u00e9/%00/..", "query_string": "a=%ZZ&b"},
    {"host": "a#b", "path": "/p#q", "query_string": "x=1#frag"},
    {"query_string": "utm_source=&utm_=x&utm_campaign=%FF%FE&utm_term=a+b&utm_" + "y" * 300},
    {"headers": {"accept-language": "de-DE;q=0.9, *", "referer": "javascript:alert(1)"}},
    {"headers": {"accept-language": "\u00e9\u00e9", "referer": "https://shop.example/p?token=x"}},
    {"headers": {"user-agent": "\x00\ud800" * 400, "referer": "//" + "r" * 5000}},
]
OPTIONS = [
    WebOptions(),
    WebOptions(anonymize_ip=True),
    WebOptions(collect_ip=False),
    WebOptions(trusted_proxies=2),
]


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "anonymized", "no-ip", "proxies"])
@pytest.mark.parametrize("overrides", HOSTILE_REQUESTS)
def test_every_built_context_passes_the_specs_rules(
    options: WebOptions, overrides: dict[str, Any]
) -> None:
    request = make_request(**overrides)
    context = request_context(request, options)
    assert content_problems({"type": "track", "context": context}) == []


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "anonymized", "no-ip", "proxies"])
@pytest.mark.parametrize("overrides", HOSTILE_REQUESTS)
def test_every_automatic_page_call_passes_the_specs_rules(
    client: Client, sent: Messages, options: WebOptions, overrides: dict[str, Any]
) -> None:
    # The automatic page call of a context as built is not checked again.
    t = RequestTracker(client, options, make_request(**overrides))
    t.finish(200, content_type=HTML)
    for message in sent:
        assert validate_message(message) == []
        assert "#" not in message["properties"].get("url", "")


def test_calls_with_the_context_as_built_send_it_whole(client: Client, sent: Messages) -> None:
    t = RequestTracker(client, WebOptions(), make_request(query_string="utm_source=news"))
    t.analytics.track("Viewed")
    t.finish(200, content_type=HTML)
    track, page = sent
    for message in (track, page):
        assert message["context"]["ip"] == "203.0.113.7"
        assert message["context"]["campaign"] == {"source": "news"}
        assert message["context"]["library"]["name"] == "segment-web"
    assert type(track["context"]) is dict


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.__setitem__("ip", "not an ip"), "context.ip"),
        (lambda c: c["page"].__setitem__("title", 5), "context.page.title"),
        (lambda c: c.__setitem__("campaign", {"name": ["x"]}), "context.campaign.name"),
        (lambda c: c.__setitem__("library", "mine"), "context.library"),
        (lambda c: c.__setitem__("page", "/home"), "context.page"),
    ],
    ids=["ip", "page-title", "campaign", "library", "page"],
)
def test_a_context_the_view_changed_is_checked_again(
    client: Client, sent: Messages, change: Any, reason: str
) -> None:
    t = RequestTracker(client, WebOptions(), make_request(query_string="utm_source=news"))
    t.analytics.track("Before")
    change(t.analytics.context)
    with pytest.raises(InvalidMessage, match=re.escape(reason)):
        t.analytics.track("After")
    assert [message["event"] for message in sent] == ["Before"]


def test_a_replaced_context_is_checked(client: Client, sent: Messages) -> None:
    t = RequestTracker(client, WebOptions(), make_request())
    t.analytics.context = {**t.analytics.context, "locale": 7}
    with pytest.raises(InvalidMessage, match=re.escape("context.locale")):
        t.analytics.track("Viewed")


def test_the_page_call_of_a_context_made_invalid_is_logged_not_sent(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    t = RequestTracker(client, WebOptions(), make_request())
    t.analytics.context["page"]["title"] = {"not": "a string"}
    with caplog.at_level(logging.ERROR):
        assert t.finish(200, content_type=HTML) is False
    assert sent == []
    assert "automatic page call for /products/42 failed" in caplog.text


def test_a_valid_change_is_sent_and_later_changes_are_still_checked(
    client: Client, sent: Messages
) -> None:
    t = RequestTracker(client, WebOptions(), make_request())
    t.analytics.context["page"]["title"] = "Product 42"
    t.analytics.track("Viewed")
    t.analytics.context["ip"] = "nowhere"
    with pytest.raises(InvalidMessage, match=re.escape("context.ip")):
        t.analytics.track("Viewed again")
    assert sent[0]["context"]["page"]["title"] == "Product 42"


def test_a_message_sent_before_the_view_saw_the_context_has_objects_of_its_own(
    client: Client, sent: Messages
) -> None:
    t = RequestTracker(client, WebOptions(), make_request(query_string="utm_source=news"))
    _, message = t.analytics.track("First")
    message["context"]["page"]["title"] = 5
    message["context"]["campaign"]["source"] = ["x"]
    t.analytics.track("Second")
    assert t.finish(200, content_type=HTML) is True
    assert [m["context"]["campaign"] for m in sent[1:]] == [{"source": "news"}] * 2
    assert ["title" in m["context"]["page"] for m in sent[1:]] == [False, False]
    assert "title" not in t.analytics.context["page"]


def test_a_change_through_a_returned_message_is_checked(client: Client, sent: Messages) -> None:
    t = RequestTracker(client, WebOptions(), make_request())
    assert t.analytics.context["page"]  # seen: calls share its objects from now on
    _, message = t.analytics.track("First")
    message["context"]["page"]["title"] = 5  # the request's own page object
    with pytest.raises(InvalidMessage, match=re.escape("context.page.title")):
        t.analytics.track("Second")


@pytest.mark.parametrize("user_id", [None, "u1"], ids=["visitor", "user"])
def test_a_change_through_the_page_message_is_checked_in_later_calls(
    client: Client, sent: Messages, user_id: str | None
) -> None:
    # A page view whose view made no call: its context was seen first by the page call.
    t = RequestTracker(client, WebOptions(), make_request(user_id=user_id))
    assert t.finish(200, content_type=HTML) is True
    message = t.analytics.page_message
    assert message is not None
    message["context"]["page"]["title"] = 5
    with pytest.raises(InvalidMessage, match=re.escape("context.page.title")):
        t.analytics.track("After")
    assert [message["type"] for message in sent] == ["page"]


def test_a_context_read_before_any_call_is_checked_once_changed(
    client: Client, sent: Messages
) -> None:
    t = RequestTracker(client, WebOptions(), make_request())
    context = t.analytics.context  # before any call: nothing of it was sent yet
    context["page"]["title"] = "Product 42"
    t.analytics.track("Viewed")
    context["page"]["title"] = ["not", "a", "string"]
    with pytest.raises(InvalidMessage, match=re.escape("context.page.title")):
        t.analytics.track("Viewed again")
    context["page"]["title"] = "Product 42"
    assert t.finish(200, content_type=HTML) is True
    assert [message["context"]["page"]["title"] for message in sent] == ["Product 42"] * 2


@pytest.mark.parametrize("seen_first", [False, True], ids=["unseen", "seen"])
def test_route_secrets_keep_the_context_as_good_as_built(
    client: Client, sent: Messages, seen_first: bool
) -> None:
    def read_route(request: Any, final: bool) -> bool:
        request.path_params = {"token": "s3cr3t-value"}
        return True

    request = make_request(path="/reset/s3cr3t-value")
    t = RequestTracker(client, WebOptions(), request, read_route=read_route)
    if seen_first:  # read once the app routed: the secret redacted already
        assert t.analytics.context["page"]["path"] == "/reset/REDACTED"
    t.analytics.track("Reset")  # the route is read: the secret redacted
    # Still as built: later calls skip the context's check.
    assert t._context_private is not seen_first
    if seen_first:
        assert t._context_built == t.analytics.context
    t.finish(200, content_type=HTML)
    assert len(sent) == 2
    for message in sent:
        assert "s3cr3t-value" not in str(message)


def test_the_clients_default_context_merges_with_a_checked_one(sent: Messages) -> None:
    client = Client("test-key", default_context={"app": {"name": "shop"}, "page": {"x": "y"}})
    try:
        t = RequestTracker(client, WebOptions(), make_request())
        t.analytics.track("Viewed")
    finally:
        client.shutdown(timeout=1)
    context = sent[0]["context"]
    assert context["app"] == {"name": "shop"}
    assert context["page"]["x"] == "y" and context["page"]["path"] == "/products/42"


def test_the_clients_default_integrations_go_with_a_checked_context(sent: Messages) -> None:
    client = Client("test-key", default_integrations={"Amplitude": False})
    try:
        RequestTracker(client, WebOptions(), make_request()).analytics.track("Viewed")
    finally:
        client.shutdown(timeout=1)
    assert sent[0]["integrations"] == {"Amplitude": False}


@pytest.mark.parametrize(
    ("properties", "path"),
    [
        ({"price": float("nan")}, "message.properties.price"),
        ({"items": [{"price": float("-inf")}]}, "message.properties.items[0].price"),
        ({"deep": {"d": {"d": float("inf")}}, "coupon": None}, "message.properties.deep.d.d"),
    ],
    ids=["flat", "nested", "with-null"],
)
def test_a_requests_call_refuses_numbers_json_cannot_hold(
    client: Client, sent: Messages, properties: dict[str, Any], path: str
) -> None:
    # The request's context needs no check; the call's own properties still do.
    t = RequestTracker(client, WebOptions(), make_request())
    with pytest.raises(InvalidMessage) as raised:
        t.analytics.track("Bought", properties)
    assert str(raised.value).startswith(path), str(raised.value)
    t.analytics.track("Bought", {"items": [{"price": 9.5}], "coupon": None})
    assert sent[0]["properties"] == {"items": [{"price": 9.5}], "coupon": None}
