"""Carrying the visitor out of the request: snapshots, pickling, threads and executors."""

from __future__ import annotations

import copy
import json
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import segment_core
from segment_core.client import Client
from segment_core.scope import (
    Analytics,
    InvalidSnapshot,
    analytics,
    bound,
    current,
    restore,
    start_thread,
    with_binding,
)
from segment_core.web import RequestInfo, RequestTracker, WebOptions

Messages = list[dict[str, Any]]


def visitor(client: Client | None = None) -> Analytics:
    request = RequestInfo(
        host="shop.example",
        scheme="https",
        path="/checkout",
        query_string="utm_campaign=spring&utm_source=news&token=s3cret",
        headers={
            "user-agent": "Mozilla/5.0 (test)",
            "accept-language": "de-CH,de;q=0.9",
            "cookie": "sessionid=secret-session",
            "authorization": "Bearer secret",
        },
        cookies={"sessionid": "secret-session", "ajs_anonymous_id": "anon-1"},
        client_addr="203.0.113.5",
        user_id="42",
    )
    analytics = RequestTracker(client, WebOptions(), request).analytics
    analytics.consent(Advertising=False)
    return analytics


def test_a_snapshot_is_small_json_with_ids_and_the_context_worth_keeping() -> None:
    snapshot = visitor().snapshot()
    text = json.dumps(snapshot)
    assert len(text) < 1000
    assert snapshot["version"] == 1
    assert snapshot["userId"] == "42"
    assert snapshot["anonymousId"] == "anon-1"
    context = snapshot["context"]
    assert set(context) == {"ip", "userAgent", "locale", "page", "campaign", "consent"}
    assert context["ip"] == "203.0.113.5"
    assert context["campaign"] == {"name": "spring", "source": "news"}
    assert context["consent"] == {"categoryPreferences": {"Advertising": False}}
    assert "s3cret" not in text  # redacted in the page fields already
    for secret in ("secret-session", "Bearer", "cookie", "authorization"):
        assert secret not in text


def test_from_snapshot_rebuilds_the_visitor(client: Client, sent: Messages) -> None:
    original = visitor(client)
    rebuilt = Analytics.from_snapshot(original.snapshot(), client)
    rebuilt.track("Order Email Sent")
    [message] = sent
    assert message["userId"] == "42"
    assert message["anonymousId"] == "anon-1"
    for key in ("ip", "userAgent", "locale", "page", "campaign", "consent"):
        assert message["context"][key] == original.context[key]


def test_from_snapshot_reads_json_text() -> None:
    text = json.dumps(visitor().snapshot())
    assert Analytics.from_snapshot(text).anonymous_id == "anon-1"
    assert Analytics.from_snapshot(text.encode()).user_id == "42"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, "snapshot must be a dict"),
        ([1, 2], "snapshot must be a dict"),
        ("{not json", "not valid JSON"),
        ("x" * 100_000, "over 98304 characters of JSON text"),
        ('{"version": 1, "anonymousId": "' + "a" * 17_000 + '"}', "over 16384 bytes"),
        ({"anonymousId": "a"}, "snapshot.version"),
        ({"version": 2, "anonymousId": "a"}, "snapshot.version"),
        ({"version": True, "anonymousId": "a"}, "snapshot.version"),
        ({"version": 1}, "needs a userId or an anonymousId"),
        ({"version": 1, "userId": 7}, "snapshot.userId"),
        ({"version": 1, "userId": ""}, "snapshot.userId"),
        ({"version": 1, "anonymousId": "a" * 17_000}, "over 16384 bytes"),
        ({"version": 1, "anonymousId": "a", "context": []}, "snapshot.context must be"),
        ({"version": 1, "anonymousId": "a", "context": {"ip": 1}}, "snapshot.context.ip"),
        # What every call for the visitor would be refused for, refused as it is read:
        ({"version": 1, "userId": "u", "context": {"ip": "hello"}}, "snapshot.context.ip"),
        ({"version": 1, "anonymousId": "\udc80"}, "snapshot.anonymousId: the text holds"),
        (
            {"version": 1, "userId": "u", "context": {"page": {"title": "caf\ud800"}}},
            "snapshot.context.page.title: the text holds",
        ),
        (  # a dict, read without its text's size check: the same limit
            {
                "version": 1,
                "userId": "u",
                "context": {"page": dict.fromkeys(("path", "search", "url"), "x" * 8000)},
            },
            "over 16384 bytes",
        ),
        (
            {"version": 1, "anonymousId": "a", "context": {"page": {"cookie": "x"}}},
            "snapshot.context.page has an unexpected key 'cookie'",
        ),
        (
            {"version": 1, "anonymousId": "a", "context": {"campaign": {"name": ["x"]}}},
            "snapshot.context.campaign.name",
        ),
        (
            {
                "version": 1,
                "anonymousId": "a",
                "context": {"campaign": {str(i): "x" for i in range(99)}},
            },
            "snapshot.context.campaign must be a dict of at most 32",
        ),
        (
            {
                "version": 1,
                "anonymousId": "a",
                "context": {"consent": {"categoryPreferences": {"A": "yes"}}},
            },
            "categoryPreferences['A']",
        ),
    ],
)
def test_from_snapshot_names_what_is_wrong(value: object, field: str) -> None:
    with pytest.raises(InvalidSnapshot, match=field.replace("[", r"\[").replace("(", r"\(")):
        Analytics.from_snapshot(value)


def test_from_snapshot_drops_context_keys_it_does_not_carry() -> None:
    value = {"version": 1, "anonymousId": "a", "context": {"ip": "1.2.3.4", "headers": {"x": 1}}}
    assert Analytics.from_snapshot(value).context == {"ip": "1.2.3.4"}


def test_restore_logs_and_returns_none_for_a_bad_snapshot(caplog: pytest.LogCaptureFixture) -> None:
    assert restore(None, source="a job") is None
    assert restore({"version": 1, "userId": []}, source="job 'x'") is None
    assert "job 'x'" in caplog.text and "snapshot.userId" in caplog.text
    assert restore(visitor().snapshot(), source="a job") is not None


def test_an_analytics_object_pickles_as_its_snapshot(client: Client, sent: Messages) -> None:
    original = visitor(client)
    copy = pickle.loads(pickle.dumps(original))
    assert copy.snapshot() == original.snapshot()
    assert copy.client is segment_core.get_client()  # the client stays in its process
    copy.track("E")
    assert sent[0]["anonymousId"] == "anon-1"
    assert sent[0]["context"]["campaign"] == original.context["campaign"]


def test_a_thread_tracks_for_the_visitor(client: Client, sent: Messages) -> None:
    seen: list[Analytics | None] = []

    def work(label: str) -> None:
        seen.append(current())
        analytics().track("Thread Work", {"label": label})

    with bound(visitor(client)):
        start_thread(work, "started").join(10)
        thread = threading.Thread(target=with_binding(work), args=("wrapped",))
        thread.start()
        thread.join(10)
    unbound = threading.Thread(target=with_binding(lambda: seen.append(current())))
    unbound.start()
    unbound.join(10)
    assert [m["properties"]["label"] for m in sent] == ["started", "wrapped"]
    assert all(m["anonymousId"] == "anon-1" and m["userId"] == "42" for m in sent)
    assert seen[2] is None


def test_start_thread_passes_name_and_daemon_on_to_the_function(
    client: Client, sent: Messages
) -> None:
    def send_welcome(email: str, name: str, daemon: str = "") -> None:
        analytics().track("Welcome Sent", {"email": email, "name": name, "daemon": daemon})

    with bound(visitor(client)):
        start_thread(send_welcome, "ann@example.com", name="Ann", daemon="imp").join(10)
        thread = start_thread(send_welcome, "bo@example.com", "Bo", thread_name="welcome")
        thread.join(10)
    assert [m["properties"] for m in sent] == [
        {"email": "ann@example.com", "name": "Ann", "daemon": "imp"},
        {"email": "bo@example.com", "name": "Bo", "daemon": ""},
    ]
    assert thread.name == "welcome" and not thread.daemon
    assert start_thread(lambda: None, thread_daemon=True).daemon
    # A function that takes no such argument: they are the thread's, as they were.
    poller = start_thread(lambda: None, name="poller", daemon=True)
    assert poller.name == "poller" and poller.daemon


def test_an_executor_tracks_for_the_visitor(client: Client, sent: Messages) -> None:
    def work(n: int) -> str | None:
        analytics().track("Pool Work", {"n": n})
        return analytics().anonymous_id

    with ThreadPoolExecutor(2) as pool, bound(visitor(client)):
        ids = list(pool.map(with_binding(work), range(6)))
    assert ids == ["anon-1"] * 6
    assert sorted(m["properties"]["n"] for m in sent) == list(range(6))
    assert {m["userId"] for m in sent} == {"42"}


def test_the_thread_gets_a_copy_its_changes_stay_its_own(client: Client, sent: Messages) -> None:
    request_analytics = visitor(client)

    def work() -> None:
        analytics().identify("other-user")
        analytics().page("In a thread")

    with bound(request_analytics):
        start_thread(work).join(10)
    assert request_analytics.user_id == "42"
    assert request_analytics.page_message is None


def test_a_snapshot_stays_small_enough_to_read_back() -> None:
    long = "x" * 8000
    context = {
        "ip": "1.2.3.4",
        "userAgent": long,
        "page": dict.fromkeys(("path", "referrer", "search", "title", "url"), long),
        "campaign": {f"k{i}": long for i in range(20)},
    }
    obj = Analytics(anonymous_id="a1", context=context)
    text = json.dumps(obj.snapshot())
    assert len(text) <= 16 * 1024
    rebuilt = Analytics.from_snapshot(text)
    assert rebuilt.anonymous_id == "a1" and rebuilt.context["ip"] == "1.2.3.4"


@pytest.mark.parametrize("length", [1_100, 2_000, 7_000])
def test_any_id_a_call_takes_travels_in_a_snapshot(
    length: int, client: Client, sent: Messages
) -> None:
    # The maker and the reader agree: an id the client sends for the request's own
    # calls (a USER_ID hook's, thousands of characters) reaches the job too.
    long_id = "u" * length
    context = {"ip": "1.2.3.4", "userAgent": "x" * 8000, "page": {"path": "/p" * 2000}}
    obj = Analytics(client, user_id=long_id, anonymous_id="a" * length, context=context)
    assert obj.track("In The Request")[0]
    rebuilt = Analytics.from_snapshot(json.dumps(obj.snapshot()), client)
    assert (rebuilt.user_id, rebuilt.anonymous_id) == (long_id, "a" * length)
    assert rebuilt.context["ip"] == "1.2.3.4"
    assert rebuilt.track("In The Job")[0]


def test_copy_keeps_the_client_and_separates_the_state(client: Client, sent: Messages) -> None:

    original = visitor(client)
    for duplicate in (original.copy(), copy.copy(original), copy.deepcopy(original)):
        assert duplicate.client is client
        assert duplicate.snapshot() == original.snapshot()
        duplicate.identify("someone-else")
        duplicate.context["campaign"]["name"] = "changed"
        assert original.user_id == "42"
        assert original.context["campaign"]["name"] == "spring"


def test_a_known_user_s_tasks_and_threads_carry_the_ids_its_calls_send(
    client: Client, sent: Messages
) -> None:
    # An API client: the user is known, no cookie, so calls send userId alone and
    # no cookie keeps an anonymous id; its tasks and threads send no other.
    tracker = RequestTracker(client, WebOptions(), RequestInfo(host="api.example", user_id="u-7"))
    request_analytics = tracker.analytics
    assert tracker.cookie_to_set() is None
    assert request_analytics.snapshot()["anonymousId"] is None
    assert request_analytics.snapshot()["userId"] == "u-7"
    assert request_analytics.copy().anonymous_id is None
    # A new visitor without a user: its anonymous id travels (the cookie keeps it).
    tracker = RequestTracker(client, WebOptions(), RequestInfo(host="shop.example"))
    assert tracker.cookie_to_set() is not None
    assert tracker.analytics.snapshot()["anonymousId"] == tracker.analytics.anonymous_id
