from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

import pytest

from segment_core import InvalidMessage, signals
from segment_core.client import Client
from segment_core.scope import Analytics
from segment_core.web import USER_NOT_KNOWN, RequestTracker, WebOptions
from tests.web.conftest import make_request

Messages = list[dict[str, Any]]
HTML = "text/html; charset=utf-8"
UUID = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"


def tracker(client: Client, options: WebOptions | None = None, **request: Any) -> RequestTracker:
    return RequestTracker(client, options or WebOptions(), make_request(**request))


def test_page_call_for_a_new_visitor(client: Client, sent: Messages) -> None:
    t = tracker(client, query_string="utm_source=news&password=x")
    cookie = t.cookie_to_set()
    assert t.finish(200, content_type=HTML) is True
    [page] = sent
    assert page["type"] == "page"
    assert page["name"] == "product-detail"
    assert page["anonymousId"] == t.analytics.anonymous_id
    assert uuid.UUID(page["anonymousId"]).version == 4
    assert "userId" not in page
    assert page["properties"] == {
        "name": "product-detail",
        "path": "/products/42",
        "referrer": "",
        "search": "?utm_source=news&password=REDACTED",
        "url": "https://shop.example/products/42?utm_source=news&password=REDACTED",
    }
    assert page["context"]["ip"] == "203.0.113.7"
    assert page["context"]["campaign"] == {"source": "news"}
    assert page["context"]["page"]["url"] == page["properties"]["url"]
    assert page["context"]["library"]["name"] == "segment-web"
    assert cookie is not None
    assert cookie.value == page["anonymousId"]
    assert cookie.secure  # https


def test_returning_visitor_keeps_its_id_and_gets_no_cookie(client: Client, sent: Messages) -> None:
    t = tracker(client, cookies={"ajs_anonymous_id": f"%22{UUID}%22", "ajs_user_id": "u-9"})
    assert t.cookie_to_set() is None
    t.finish(200, content_type=HTML)
    assert sent[0]["anonymousId"] == UUID
    assert "userId" not in sent[0]  # the browser's ajs_user_id decides nothing by default


def test_the_user_cookie_is_read_only_when_the_app_opts_in(client: Client, sent: Messages) -> None:
    options = WebOptions(user_id_from_cookie=True)
    t = tracker(client, options, cookies={"ajs_anonymous_id": UUID, "ajs_user_id": "%22u-9%22"})
    t.finish(200, content_type=HTML)
    assert sent[0]["userId"] == "u-9"


def test_framework_user_wins_over_the_cookie(client: Client, sent: Messages) -> None:
    t = tracker(client, user_id="42", cookies={"ajs_user_id": "old"})
    t.finish(200, content_type=HTML)
    assert sent[0]["userId"] == "42"


def test_user_id_hook(client: Client, sent: Messages) -> None:
    options = WebOptions(user_id=lambda request: 7)
    tracker(client, options, user_id="42").finish(200, content_type=HTML)
    assert sent[0]["userId"] == "7"


def test_user_id_hook_that_fails_falls_back_to_the_opted_in_cookie(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: object) -> str:
        raise KeyError("oops")

    options = WebOptions(user_id=broken, user_id_from_cookie=True)
    t = tracker(client, options, cookies={"ajs_user_id": "u-1"})
    assert t.finish(200, content_type=HTML)
    assert sent[0]["userId"] == "u-1"
    assert "the user_id hook raised" in caplog.text
    t = tracker(client, WebOptions(user_id=lambda r: ["not", "an", "id"]))
    assert t.finish(200, content_type=HTML)
    assert "userId" not in sent[1]
    assert "user_id must be a string or an integer, got list" in caplog.text


def test_a_user_id_hook_that_fails_later_is_no_logout(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    # The first answer is the one as the request starts (a visitor without the cookie).
    answers: list[object] = ["u-1", "u-1", RuntimeError("the database is away"), None]

    def flaky(request: object) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    t = tracker(client, WebOptions(user_id=flaky))
    t.analytics.track("First")  # u-1
    t.analytics.track("Second")  # the hook raised: still u-1
    t.analytics.track("Third")  # the hook says nobody: a logout
    assert [m.get("userId") for m in sent] == ["u-1", "u-1", None]
    assert "the user_id hook raised" in caplog.text


class SessionHook:
    """A hook reading a session that a middleware inside the adapter's sets up:
    it raises until the app has run (:meth:`app_ran`), then answers ``answer``."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.session = False

    def __call__(self, request: object) -> object:
        if not self.session:
            raise AssertionError("SessionMiddleware must be installed")
        return self.answer

    def app_ran(self) -> None:
        self.session = True


def test_a_consent_hook_that_raises_as_the_request_starts_is_asked_once_the_app_ran(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    consent = SessionHook(True)
    t = tracker(client, WebOptions(consent=consent))
    assert t.allowed is None  # not known yet
    consent.app_ran()
    assert t.cookie_to_set() is not None
    assert t.finish(200, content_type=HTML)
    assert t.allowed is True
    assert [m["type"] for m in sent] == ["page"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_consent_hook_that_raises_once_the_app_ran_is_logged_once_and_means_no(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    t = tracker(client, WebOptions(consent=SessionHook(True)))
    assert t.cookie_to_set() is None
    assert not t.finish(200, content_type=HTML)
    assert t.allowed is False and sent == []
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "the consent hook raised" in error.getMessage()


def test_a_consent_hook_is_asked_again_for_a_page_alone(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    # A redirect made before a session middleware ran (to https: no cookie) is no page.
    t = tracker(client, WebOptions(consent=SessionHook(True)), scheme="http")
    assert t.cookie_to_set(redirect_to="https://shop.example/products/42") is None
    assert not t.finish(307)
    assert t.allowed is None
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("answer", [True, False])
def test_an_excluded_path_asks_the_consent_hook_only_for_a_login(
    client: Client, sent: Messages, answer: bool
) -> None:
    # An API under exclude_paths: no automatic call to decide as it starts; its
    # login's identify is one, and asks then.
    asked: list[str] = []

    def consent(request: object) -> bool:
        asked.append("asked")
        return answer

    t = tracker(client, WebOptions(consent=consent, exclude_paths=[r"^/api/"]), path="/api/login")
    assert t.excluded and t.allowed is None and asked == []
    assert t.analytics.login("u-1") is answer
    assert asked == ["asked"] and t.allowed is answer
    # The login's identify joined the user to the id: the cookie keeps it.
    cookie = t.cookie_to_set()
    assert not t.finish(200, content_type=HTML)
    assert [m["type"] for m in sent] == (["identify"] if answer else [])
    if answer:
        assert cookie is not None and cookie.value == sent[0]["anonymousId"]
    else:
        assert cookie is None


def test_a_user_id_hook_that_raises_as_a_new_visitor_arrives_is_not_logged(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = SessionHook("u-1")
    t = tracker(client, WebOptions(user_id=user_id))
    user_id.app_ran()
    assert t.cookie_to_set() is None  # a known user, whose anonymous id went unused
    assert t.finish(200, content_type=HTML)
    assert [m.get("userId") for m in sent] == ["u-1"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_no_cookie_on_a_redirect_from_http_to_https(client: Client) -> None:
    def cookie(scheme: str, redirect_to: str | None, method: str = "GET") -> Any:
        return tracker(client, scheme=scheme, method=method).cookie_to_set(redirect_to)

    # The https page sets it, Secure.
    assert cookie("http", "https://shop.example/products/42") is None
    assert cookie("http", "HTTPS://shop.example/") is None
    # Other redirects keep the visitor's id: a login's POST, a move within the site.
    assert cookie("http", "/account", "POST") is not None
    assert cookie("http", "http://shop.example/account") is not None
    assert cookie("http", "//shop.example/account") is not None  # still http
    secure = cookie("https", "https://shop.example/account")
    assert secure is not None and secure.secure


def test_no_page_call_and_no_cookie_when_privacy_says_no(client: Client, sent: Messages) -> None:
    for t in (
        tracker(client, headers={"sec-gpc": "1"}),
        tracker(client, WebOptions(honor_dnt=True), headers={"dnt": "1"}),
        tracker(client, WebOptions(consent=lambda r: False)),
        tracker(client, headers={"user-agent": "Googlebot/2.1"}),
    ):
        assert t.cookie_to_set() is None
        assert t.finish(200, content_type=HTML) is False
        # Explicit calls are the app's decision and still work.
        t.analytics.track("Checked Out")
    assert [m["type"] for m in sent] == ["track"] * 4


def test_excluded_path_no_page_call_no_cookie(client: Client, sent: Messages) -> None:
    t = tracker(client, path="/static/app.js")
    assert t.cookie_to_set() is None
    assert not t.finish(200, content_type=HTML)
    assert sent == []


def test_excluded_paths_ask_for_the_user_only_for_a_call(client: Client, sent: Messages) -> None:
    asked: list[object] = []

    def user_id(request: object) -> str:
        asked.append(request)  # a session read, a user query
        return "u-1"

    options = WebOptions(user_id=user_id)
    for path in ("/healthz", "/robots.txt", "/static/app.css"):
        t = tracker(client, options, path=path, headers={"accept": "*/*"})  # a probe's
        assert t.cookie_to_set() is None
        assert not t.finish(200, content_type=HTML)
    assert asked == []  # not as they start, nor for a cookie or a page call
    assert sent == []
    # A call a view makes there (an API under exclude_paths) carries the user.
    t = tracker(client, options, path="/healthz", headers={"accept": "*/*"})
    t.analytics.track("Checked")
    assert [m.get("userId") for m in sent] == ["u-1"]
    assert len(asked) == 1


def test_cookie_options(client: Client) -> None:
    options = WebOptions(cookie_format="quoted", cookie_domain=".shop.example")
    cookie = tracker(client, options, scheme="http").cookie_to_set()
    assert cookie is not None
    assert cookie.value.startswith("%22") and cookie.domain == ".shop.example"
    assert not cookie.secure
    assert tracker(client, WebOptions(set_cookie=False)).cookie_to_set() is None


def test_not_found_and_errors_are_not_pages_but_keep_the_cookie(
    client: Client, sent: Messages
) -> None:
    t = tracker(client)
    assert t.cookie_to_set() is not None
    assert not t.finish(404)
    assert sent == []


def test_finish_runs_once(client: Client, sent: Messages) -> None:
    t = tracker(client)
    assert t.finish(200, content_type=HTML)
    assert not t.finish(200, content_type=HTML)
    assert len(sent) == 1


def test_route_learned_after_the_view(client: Client, sent: Messages) -> None:
    t = tracker(client, route_name=None, route_template=None)
    t.finish(200, content_type=HTML, route_name="home", route_template="/")
    assert sent[0]["name"] == "home"


def test_identify_then_track_in_one_request(client: Client, sent: Messages) -> None:
    t = tracker(client)
    t.analytics.identify(99, {"plan": "pro"})
    t.analytics.track("Upgraded", {"plan": "pro"})
    t.finish(200, content_type=HTML)
    identify, track, page = sent
    assert identify["userId"] == track["userId"] == page["userId"] == "99"
    assert identify["anonymousId"] == track["anonymousId"] == t.analytics.anonymous_id
    assert identify["traits"] == {"plan": "pro"}
    assert track["context"]["page"]["path"] == "/products/42"


def test_a_new_visitor_who_logs_in_is_joined_to_the_user(client: Client, sent: Messages) -> None:
    # The login is the visitor's first request: no cookie yet, and the user_id hook
    # reads the session the view writes.
    session: dict[str, str] = {}
    t = tracker(client, WebOptions(user_id=lambda request: session.get("user")))
    session["user"] = "alice"
    t.analytics.identify("alice")
    t.analytics.track("Logged In")
    cookie = t.cookie_to_set()
    identify, track = sent
    assert identify["userId"] == track["userId"] == "alice"
    assert identify["anonymousId"] == track["anonymousId"] == t.analytics.anonymous_id
    assert cookie is not None and cookie.value == t.analytics.anonymous_id


def test_an_api_client_the_hook_knows_is_not_given_an_anonymous_id(
    client: Client, sent: Messages
) -> None:
    t = tracker(client, WebOptions(user_id=lambda request: "42"))
    t.analytics.identify("42", {"plan": "pro"})
    t.analytics.track("Upgraded")
    assert t.cookie_to_set() is None
    assert [(m["userId"], m.get("anonymousId")) for m in sent] == [("42", None)] * 2


def test_alias_of_a_known_user_without_the_cookie_merges_the_user_id(
    client: Client, sent: Messages
) -> None:
    # An API client: its calls carry userId alone; its anonymous id is no one's.
    t = tracker(client, user_id="42")
    t.analytics.alias("crm-42")
    t.analytics.track("Renamed")
    assert t.cookie_to_set() is None
    alias, track = sent
    assert (alias["previousId"], alias["userId"]) == ("42", "crm-42")
    assert "anonymousId" not in track and track["userId"] == "crm-42"


def test_alias_of_a_new_anonymous_visitor_keeps_its_id_in_the_cookie(
    client: Client, sent: Messages
) -> None:
    t = tracker(client)
    t.analytics.alias("user-1")
    cookie = t.cookie_to_set()  # the id the alias merged stays the browser's
    assert cookie is not None and cookie.value == t.analytics.anonymous_id
    assert sent[0]["previousId"] == t.analytics.anonymous_id


def test_alias_of_a_returning_visitor_merges_its_anonymous_id(
    client: Client, sent: Messages
) -> None:
    t = tracker(client, user_id="42", cookies={"ajs_anonymous_id": UUID})
    t.analytics.alias("crm-42")
    assert sent[0]["previousId"] == UUID


def test_an_explicit_page_call_replaces_the_automatic_one(client: Client, sent: Messages) -> None:
    t = tracker(client)
    t.analytics.page("Product", {"sku": "A1"}, category="Shop")
    assert not t.finish(200, content_type=HTML)
    [page] = sent
    fields = page["context"]["page"]
    assert (page["name"], page["category"], page["properties"]) == (
        "Product",
        "Shop",
        # The request's page fields, the name and the category, as the automatic
        # call's and analytics.js's page("Shop", "Product") do.
        {
            **{key: fields[key] for key in ("path", "url", "referrer", "search")},
            "name": "Product",
            "category": "Shop",
            "sku": "A1",
        },
    )


def test_an_explicit_page_call_s_own_properties_take_the_place_of_the_request_s(
    client: Client, sent: Messages
) -> None:
    t = tracker(
        client,
        path="/reset/s3cr3t-t0ken/",
        query_string="next=/cart/",
        path_params={"token": "s3cr3t-t0ken"},
    )
    t.analytics.page("Virtual", {"path": "/checkout/step-2", "search": None, "name": "v"})
    [page] = sent
    properties = page["properties"]
    assert (properties["path"], properties["search"]) == ("/checkout/step-2", None)
    assert (page["name"], properties["name"]) == ("Virtual", "v")
    assert "s3cr3t" not in properties["url"]


def test_page_properties_and_name_hooks(client: Client, sent: Messages) -> None:
    options = WebOptions(
        page_name=lambda request: "Custom",
        page_properties=lambda request, response: {"status": response},
    )
    tracker(client, options).finish(200, 200, content_type=HTML)
    assert sent[0]["name"] == "Custom"
    assert sent[0]["properties"]["status"] == 200


def test_a_page_call_that_cannot_be_encoded_is_logged_not_raised(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    options = WebOptions(page_properties=lambda request, response: {"blob": object()})
    assert tracker(client, options).finish(200, content_type=HTML) is True
    [page] = sent  # without what the hook returned, as when the hook raises
    assert page["properties"]["path"] == "/products/42"
    assert "blob" not in page["properties"]
    assert (
        "automatic page call for /products/42 was sent without what page_properties "
        "returned, which cannot be sent: message.properties.blob: a value of type object"
    ) in caplog.text


def test_a_request_that_cannot_be_read_still_gets_analytics(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenHeaders(dict[str, str]):
        def get(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("broken adapter")

    with caplog.at_level(logging.ERROR):
        t = tracker(client, headers={})
        t.request.headers = BrokenHeaders()
        t = RequestTracker(client, WebOptions(), t.request)
    assert "could not read the request" in caplog.text
    assert t.cookie_to_set() is None
    assert t.finish(200, content_type=HTML) is False
    t.analytics.track("Still Works")
    assert sent[0]["event"] == "Still Works"


FIXED_TIME = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
CLIENT_SETTINGS: list[dict[str, Any]] = [
    {},
    {
        "default_context": {"app": {"name": "shop"}, "page": {"title": "Shop"}},
        "default_integrations": {"Amplitude": False},
    },
    {"now": lambda: FIXED_TIME, "uid": lambda: "id-1"},
]


@pytest.mark.parametrize("listened", [False, True], ids=["no receiver", "a receiver"])
def test_a_queued_automatic_page_call_is_returned_and_signalled_in_full(
    segment_collector: Any, listened: bool
) -> None:
    client = Client("test-key", host=segment_collector.url)
    enqueued: list[dict[str, Any]] = []

    def on_enqueued(sender: Any, message: dict[str, Any]) -> None:
        enqueued.append(dict(message))

    if listened:
        signals.message_enqueued.connect(on_enqueued, sender=client)
    try:
        t = tracker(client)
        assert t.finish(200, content_type=HTML) is True
        returned = t.analytics.page_message
        assert client.flush(timeout=10)
    finally:
        signals.message_enqueued.disconnect(on_enqueued)
        client.shutdown(timeout=5)
    assert returned is not None
    assert returned.items() >= {"integrations": {}, "userId": None, "category": None}.items()
    assert returned["anonymousId"] == t.analytics.anonymous_id
    assert enqueued == ([returned] if listened else [])
    [event] = segment_collector.events()
    assert event["message"]["messageId"] == returned["messageId"]
    assert "integrations" not in event["message"]  # the wire stays lean


@pytest.mark.parametrize("settings", CLIENT_SETTINGS, ids=["plain", "defaults", "injected"])
@pytest.mark.parametrize("user", [None, "u-7"])
def test_the_automatic_page_call_is_the_one_analytics_page_makes(
    settings: dict[str, Any], user: str | None, sent: Messages
) -> None:
    client = Client("test-key", **settings)
    try:
        t = RequestTracker(
            client, WebOptions(), make_request(query_string="utm_source=news", user_id=user)
        )
        ids = {"user_id": t.analytics.user_id, "anonymous_id": t.analytics.anonymous_id}
        context = dict(t.analytics.context)
        assert t.finish(200, content_type=HTML) is True
        returned = t.analytics.page_message
        [automatic] = sent
        if user is not None:
            ids["anonymous_id"] = None  # a known user's calls leave a new visitor's id out
        reference = Analytics(client, **ids, context=context)
        _, expected = reference.page(automatic["name"], dict(automatic["properties"]))
    finally:
        client.shutdown(timeout=1)
    wire = sent[1]
    if "uid" not in settings:  # a new id and time for each call
        for message in (automatic, wire, returned, expected):
            del message["messageId"], message["timestamp"]
    assert automatic == wire
    assert returned == expected


# -- logins and logouts ------------------------------------------------------------------

RETURNING = {"ajs_anonymous_id": UUID}


@pytest.mark.parametrize(
    ("answer", "identified", "logged"),
    [
        (True, True, ""),
        (False, False, ""),
        ("yes", False, "identify_on_login returned str, not True or False"),
        (RuntimeError("bug in the hook"), False, "the identify_on_login hook raised"),
    ],
)
def test_an_identify_on_login_hook_decides_each_login(
    client: Client,
    sent: Messages,
    caplog: pytest.LogCaptureFixture,
    answer: object,
    identified: bool,
    logged: str,
) -> None:
    native = object()  # the framework's request
    asked: list[tuple[object, object]] = []

    def identify_on_login(request: object, user: object) -> object:
        asked.append((request, user))
        if isinstance(answer, Exception):
            raise answer
        return answer

    t = tracker(client, WebOptions(identify_on_login=identify_on_login), native=native)
    assert t.identify_login("9", {"username": "ann"}) is identified
    assert asked == [(native, {"username": "ann"})]
    assert [m["userId"] for m in sent] == (["9"] if identified else [])
    assert logged in caplog.text


@pytest.mark.parametrize(
    ("answer", "identified_as"),
    [
        ("u-9", "u-9"),
        (None, None),  # an admin acting as the user, say: the hook names nobody
        (RuntimeError("bug in the hook"), None),
        (USER_NOT_KNOWN, "9"),  # the hook cannot tell where the login runs
    ],
)
def test_with_a_user_id_hook_a_login_it_names_no_user_for_sends_no_identify(
    client: Client, sent: Messages, answer: object, identified_as: str | None
) -> None:
    def user_id(request: object) -> object:
        if isinstance(answer, Exception):
            raise answer
        return answer

    t = tracker(client, WebOptions(user_id=user_id), cookies=RETURNING)
    assert t.identify_login("9") is (identified_as is not None)
    assert [m["userId"] for m in sent] == ([] if identified_as is None else [identified_as])


@pytest.mark.parametrize(
    ("answer", "identified_as", "later_calls_as"),
    [
        ("u-9", "u-9", "u-9"),  # the hook maps the user to the id it sends
        (None, "9", "9"),  # the hook reads what the login has still to store
        (RuntimeError("bug in the hook"), None, None),
        (USER_NOT_KNOWN, "9", "9"),
    ],
)
def test_a_login_the_view_names_is_identified_where_the_user_id_hook_knows_no_user_yet(
    client: Client,
    sent: Messages,
    answer: object,
    identified_as: str | None,
    later_calls_as: str | None,
) -> None:
    def user_id(request: object) -> object:
        if isinstance(answer, Exception):
            raise answer
        return answer

    t = tracker(client, WebOptions(user_id=user_id))
    assert t.analytics.login(9) is (identified_as is not None)
    t.analytics.track("Signed In")
    assert t.finish(200, content_type=HTML)
    assert [(m["type"], m.get("userId")) for m in sent] == [
        *([("identify", identified_as)] if identified_as else []),
        ("track", later_calls_as),
        ("page", later_calls_as),
    ]


class _Role(str):
    """A str subclass (a StrEnum's member, Django's SafeString)."""


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("x" * 1025, "1,025 characters long, more than the 1,024 of a user id"),
        (_Role("é" * 2000), "2,000 characters long, more than the 1,024 of a user id"),
        ("ann\ud800", "the text holds a lone surrogate '\\ud800'"),
    ],
)
def test_a_user_id_no_call_could_send_is_logged_and_no_user(
    client: Client,
    sent: Messages,
    caplog: pytest.LogCaptureFixture,
    answer: str,
    problem: str,
) -> None:
    t = tracker(client, WebOptions(user_id=lambda request: answer))
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        t.analytics.track("Viewed")
        assert t.finish(200, content_type=HTML)
    assert [(m["type"], m.get("userId")) for m in sent] == [("track", None), ("page", None)]
    assert f"user_id: {problem}" in caplog.text
    with pytest.raises(InvalidMessage, match=r"^user_id: "):
        t.analytics.login(answer)  # the view's own argument: its mistake, told at once


def test_a_user_id_of_the_longest_length_is_kept(client: Client, sent: Messages) -> None:
    answer = "é" * 1024
    t = tracker(client, WebOptions(user_id=lambda request: answer))
    t.analytics.track("Viewed")
    assert [m["userId"] for m in sent] == [answer]


@pytest.mark.parametrize("source", ["framework", "user_id hook"])
def test_a_logout_ends_the_user_for_the_rest_of_the_request(
    client: Client, sent: Messages, source: str
) -> None:
    # The framework's user (Starlette's scope["user"]) or the hook's answer still
    # names the user once the view has ended the session: the view says so.
    options = WebOptions(user_id=lambda request: "u-7") if source == "user_id hook" else None
    t = RequestTracker(
        client,
        options or WebOptions(),
        make_request(user_id="u-7", cookies=RETURNING),
        read_user=lambda: "u-7",
    )
    t.analytics.track("Signing Out")
    t.analytics.logout()
    t.analytics.track("Signed Out")
    t.user_answered("u-7")  # an async user_id hook's answer as the response starts
    assert t.analytics.user_id is None
    assert t.cookie_to_set() is None  # a returning visitor: its cookie stays as it is
    assert t.finish(200, content_type=HTML)
    signing_out, signed_out, page = sent
    assert signing_out["userId"] == "u-7"
    assert "userId" not in signed_out and "userId" not in page
    assert {m["anonymousId"] for m in sent} == {UUID}


def test_a_login_after_a_logout_in_one_request_names_the_new_user(
    client: Client, sent: Messages
) -> None:
    user = ["u-7"]
    t = RequestTracker(
        client,
        WebOptions(identify_on_login=False),
        make_request(user_id="u-7", cookies=RETURNING),
        read_user=lambda: user[0],
    )
    t.analytics.logout()
    t.analytics.track("Signed Out")
    user[0] = "u-8"
    assert not t.identify_login("u-8")  # turned off; the new user is followed all the same
    t.analytics.track("Signed In")
    assert [m.get("userId") for m in sent] == [None, "u-8"]


CROSS_SITE_FORM = {
    "sec-fetch-site": "cross-site",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        # A payment's 3-D Secure return, a SAML or "Sign in with Apple" form_post.
        ("POST", CROSS_SITE_FORM),
        ("PUT", {"sec-fetch-site": "Cross-Site"}),
        # Another site's frame, or its fetch(): no Lax cookie either.
        (
            "GET",
            {
                "sec-fetch-site": "cross-site",
                "sec-fetch-mode": "navigate",
                "sec-fetch-dest": "iframe",
            },
        ),
        (
            "GET",
            {"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"},
        ),
    ],
)
def test_no_cookie_where_the_browser_held_the_visitor_s_cookie_back(
    client: Client, sent: Messages, method: str, headers: dict[str, str]
) -> None:
    t = tracker(client, method=method, headers=headers)
    assert t.cookie_to_set() is None  # it would replace the one the browser keeps
    t.finish(200, content_type=HTML)
    assert [m["anonymousId"] for m in sent] in ([t.analytics.anonymous_id], [])


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", {"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate"}),
        ("POST", {"sec-fetch-site": "same-site", "sec-fetch-mode": "navigate"}),
        ("POST", {}),  # a browser without Fetch Metadata, or no browser: nothing to tell
        ("GET", CROSS_SITE_FORM),  # a link from another site: the Lax cookie comes along
        ("GET", {"sec-fetch-site": "none", "sec-fetch-mode": "navigate"}),
    ],
)
def test_a_new_visitor_whose_cookie_the_browser_would_send_gets_one(
    client: Client, method: str, headers: dict[str, str]
) -> None:
    assert tracker(client, method=method, headers=headers).cookie_to_set() is not None


def test_a_login_joins_the_visitor_as_a_framework_s_login_does(
    client: Client, sent: Messages
) -> None:
    options = WebOptions(identify_traits=lambda user: {"plan": user["plan"]})
    t = tracker(client, options)
    assert t.analytics.login(42, {"plan": "pro"}) is True
    t.analytics.track("Signed In")
    [identify, track] = sent
    assert identify["type"] == "identify"
    assert (identify["userId"], identify["traits"]) == ("42", {"plan": "pro"})
    assert identify["anonymousId"] == t.analytics.anonymous_id
    assert track["userId"] == "42"


@pytest.mark.parametrize(
    ("options", "headers"),
    [
        (WebOptions(identify_on_login=False), {}),
        (WebOptions(identify_on_login=lambda request, user: False), {}),
        (WebOptions(), {"sec-gpc": "1"}),
        (WebOptions(), {"user-agent": "Googlebot/2.1"}),
    ],
)
def test_a_login_sends_no_identify_where_the_options_or_the_visitor_say_no(
    client: Client, sent: Messages, options: WebOptions, headers: dict[str, str]
) -> None:
    t = tracker(client, options, headers=headers)
    assert t.analytics.login("u-7") is False
    t.analytics.track("Signed In")
    assert [m["type"] for m in sent] in (["track"], [])
    assert [m["userId"] for m in sent] in (["u-7"], [])


@pytest.mark.parametrize("user_id", [None, "", True, 1.5])
def test_a_login_without_a_user_id_is_refused_naming_it(client: Client, user_id: object) -> None:
    with pytest.raises(ValueError, match="user_id"):
        tracker(client).analytics.login(user_id)


def test_an_explicit_page_call_reads_a_multi_value_dict_as_a_call_does(
    client: Client, sent: Messages
) -> None:
    from werkzeug.datastructures import MultiDict

    t = tracker(client)
    t.analytics.page("Filtered", MultiDict([("color", "red"), ("color", "blue")]))
    [page] = sent
    assert page["properties"]["color"] == "red"  # its first value, as track() sends it
    assert page["properties"]["path"] == "/products/42"
