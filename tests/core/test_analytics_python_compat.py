"""segment_core driven exactly as analytics-python's README and docs drive analytics-python.

Where it helps, both libraries make the same calls side by side and the returned
messages and the requests they send are compared.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from segment.analytics import Client as TheirClient

import segment_core
from segment_core import Client
from segment_core.collector import run_in_background
from segment_core.config import ALIASES, option_names
from tests.receiver import Fault, Receiver

Call = Callable[[Any], tuple[bool, dict[str, Any]]]

WHEN = dt.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=dt.timezone.utc)

# The calls of analytics-python's README and of Segment's docs for it.
CALLS: dict[str, Call] = {
    "identify": lambda c: c.identify(
        "019mr8mf4r", {"email": "john@example.com", "name": "John Smith", "friends": 30}
    ),
    "track": lambda c: c.track("f4ca124298", "Signed Up", {"plan": "Enterprise"}),
    "track without properties": lambda c: c.track("f4ca124298", "Article Bookmarked"),
    "track anonymous": lambda c: c.track(anonymous_id="a-1", event="Viewed", properties={}),
    "page": lambda c: c.page("user_id", "Docs", "Python", {"url": "http://segment.com"}),
    "page bare": lambda c: c.page("user_id"),
    "screen": lambda c: c.screen("user_id", "Docs", "Python", {"url": "app://docs"}),
    "group": lambda c: c.group(
        "user_id", "group_id", {"name": "Initech", "description": "Accounting Software"}
    ),
    "alias": lambda c: c.alias("previous_id", "user_id"),
    # Reserved traits as text, as Segment's destination docs write them.
    "identify with a company's name": lambda c: c.identify(
        "u1", {"company": "Initech", "address": "1 Main St"}
    ),
    "group with an address": lambda c: c.group("u1", "g1", {"address": "1 Main St"}),
    "everything": lambda c: c.track(
        user_id=42,
        event="Order Completed",
        properties={"revenue": 39.95, "items": [{"sku": "A-1"}]},
        context={"ip": "203.0.113.7", "app": {"name": "shop"}},
        timestamp=WHEN,
        anonymous_id="anon-7",
        integrations={"All": False, "Mixpanel": True},
        message_id="order-42",
    ),
    "identify with options": lambda c: c.identify(
        "u1", {"plan": "pro"}, {"locale": "de-CH"}, WHEN, None, {"Salesforce": False}, 7
    ),
}


def _comparable(message: dict[str, Any], *, given_id: bool) -> dict[str, Any]:
    """A message without what legitimately differs: the library, the timestamp's spelling."""
    out = dict(message)
    out["context"] = {k: v for k, v in out["context"].items() if k != "library"}
    out["timestamp"] = dt.datetime.fromisoformat(out["timestamp"].replace("Z", "+00:00"))
    if not given_id:  # generated: the time of the call and a random id
        out.pop("messageId")
        elapsed = dt.datetime.now(dt.timezone.utc) - out.pop("timestamp")
        assert abs(elapsed.total_seconds()) < 600
    return out


@pytest.mark.parametrize("name", list(CALLS))
def test_the_returned_message_is_analytics_pythons(name: str) -> None:
    theirs_ok, theirs = CALLS[name](TheirClient("write-key", send=False))
    ours_ok, ours = CALLS[name](Client("write-key", send=False))
    assert ours_ok is theirs_ok is True
    given_id = name in ("everything", "identify with options")
    assert set(ours) == set(theirs)
    assert _comparable(ours, given_id=given_id) == _comparable(theirs, given_id=given_id)
    if not given_id:
        assert len(ours["messageId"]) == len(theirs["messageId"]) == 36
    assert ours["context"]["library"]["name"] == "segment-web"


def test_code_written_for_analytics_python_reads_every_key() -> None:
    _, msg = Client("write-key", send=False).track("user-1", "Signed Up")
    assert msg["properties"] == {} and msg["integrations"] == {}
    assert msg["anonymousId"] is None and msg["userId"] == "user-1"
    _, page = Client("write-key", send=False).page(anonymous_id="a-1")
    assert (page["name"], page["category"], page["userId"]) == (None, None, None)


@pytest.mark.parametrize("name", list(CALLS))
def test_a_hook_that_leaves_keys_out_still_returns_every_key(name: str) -> None:
    # A privacy hook: the wire goes without them, the returned message keeps its shape.
    def lean(message: dict[str, Any]) -> dict[str, Any]:
        kept = ("type", "messageId", "timestamp", "userId", "anonymousId", "event")
        return {key: value for key, value in message.items() if key in kept}

    _, theirs = CALLS[name](TheirClient("write-key", send=False))
    _, ours = CALLS[name](Client("write-key", send=False, before_send=lean))
    assert set(ours) == set(theirs)


def test_the_returned_message_is_the_callers_to_change(receiver: Receiver) -> None:
    # Nothing of a returned message is shared with the next one, whichever client.
    defaults = {"app": {"name": "shop", "version": "1.0"}, "tags": [["a"]]}
    client = Client(
        "write-key",
        host=receiver.url,
        default_context=defaults,
        default_integrations={"Amplitude": {"session_id": 1}},
    )
    other = Client("write-key", host=receiver.url)
    _, first = client.track("u1", "First", context={"ip": "203.0.113.7"})
    first["context"]["app"]["version"] = "EDITED"
    first["context"]["tags"][0].append("EDITED")
    first["context"]["library"]["name"] = "EDITED"
    first["integrations"]["Amplitude"]["session_id"] = "EDITED"
    _, mine = other.track("u1", "Mine")
    mine["context"]["library"]["version"] = "EDITED"
    defaults["app"]["version"] = "EDITED after construction"
    client.track("u1", "Second")
    other.track("u1", "Third")
    assert client.flush(timeout=5) and other.flush(timeout=5)
    sent = {m["event"]: m for m in receiver.wait_for_messages(4)}
    assert sent["Second"]["context"]["app"] == {"name": "shop", "version": "1.0"}
    assert sent["Second"]["context"]["tags"] == [["a"]]
    assert sent["Second"]["integrations"] == {"Amplitude": {"session_id": 1}}
    for event in ("Second", "Third"):
        assert sent[event]["context"]["library"]["name"] == "segment-web"
        assert sent[event]["context"]["library"]["version"] != "EDITED"
    client.shutdown(timeout=5)
    other.shutdown(timeout=5)


def test_values_analytics_python_accepts_in_properties(receiver: Receiver) -> None:
    # bytes are UTF-8 text to analytics-python; a naive datetime is one whose
    # tzinfo gives no offset as well as one without a tzinfo.
    class NoOffset(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> None:
            return None

        def dst(self, when: dt.datetime | None) -> None:
            return None

    when = dt.datetime(2020, 6, 1, 12)
    for library in (TheirClient, Client):
        library("write-key", host=receiver.url, sync_mode=True).track(
            "u1",
            "Values",
            {"sku": b"ABC-123", "tags": [bytearray(b"caf\xc3\xa9")]},
            timestamp=when.replace(tzinfo=NoOffset()),
        )
    theirs, ours = receiver.messages()
    assert ours["properties"] == theirs["properties"] == {"sku": "ABC-123", "tags": ["café"]}
    assert ours["timestamp"] == "2020-06-01T12:00:00.000Z"
    with pytest.raises(segment_core.InvalidMessage, match=r"properties\.sku: bytes that are not"):
        Client("write-key", send=False).track("u1", "Values", {"sku": b"\xff"})


def test_an_empty_message_id_gets_one_made() -> None:
    _, theirs = TheirClient("write-key", send=False).track("u1", "E", message_id=None)
    _, ours = Client("write-key", send=False).track("u1", "E", message_id="")
    assert len(ours["messageId"]) == len(theirs["messageId"]) == 36
    with pytest.raises(segment_core.InvalidMessage, match="at most 100 characters, got 128"):
        Client("write-key", send=False).track("u1", "E", message_id="f" * 128)


def _wire(message: dict[str, Any], given_id: bool) -> dict[str, Any]:
    """What Segment reads: absent and empty/None keys mean the same to it."""
    kept = {k: v for k, v in message.items() if v not in (None, {})}
    return _comparable(kept, given_id=given_id)


def test_both_libraries_send_the_same_content(receiver: Receiver) -> None:
    theirs = TheirClient("write-key", host=receiver.url, sync_mode=True)
    ours = Client("write-key", host=receiver.url, sync_mode=True)
    for call in CALLS.values():
        call(theirs)
        call(ours)
    requests = receiver.ok_requests()
    assert len(requests) == 2 * len(CALLS)
    for name, theirs_request, ours_request in zip(
        CALLS, requests[::2], requests[1::2], strict=True
    ):
        assert ours_request.path == theirs_request.path == "/v1/batch"
        assert ours_request.headers["authorization"] == theirs_request.headers["authorization"]
        assert ours_request.body["writeKey"] == theirs_request.body["writeKey"] == "write-key"
        [their_message] = theirs_request.batch
        [our_message] = ours_request.batch
        given_id = name in ("everything", "identify with options")
        assert _wire(our_message, given_id) == _wire(their_message, given_id)
    token = base64.b64encode(b"write-key:").decode()
    assert requests[1].headers["authorization"] == f"Basic {token}"


# analytics-python reads a false value there as an empty dict (`properties or {}`).
FALSE_VALUES: dict[str, Call] = {
    "track, properties []": lambda c: c.track("u1", "E", []),
    "track, context ''": lambda c: c.track("u1", "E", context=""),
    "track, integrations 0": lambda c: c.track("u1", "E", integrations=0),
    "page, properties ()": lambda c: c.page("u1", properties=()),
    "screen, context False": lambda c: c.screen("u1", "Home", context=False),
    "identify, traits ''": lambda c: c.identify("u1", ""),
    "group, traits 0": lambda c: c.group("u1", "g1", 0),
    "alias, context []": lambda c: c.alias("p1", "u1", context=[]),
    "alias, integrations ()": lambda c: c.alias("p1", "u1", integrations=()),
}


@pytest.mark.parametrize("name", list(FALSE_VALUES))
def test_a_false_value_is_an_empty_one_as_in_analytics_python(
    name: str, receiver: Receiver, clients: list[Client]
) -> None:
    ours_client = Client("write-key", host=receiver.url, sync_mode=True)
    clients.append(ours_client)
    theirs_client = TheirClient("write-key", host=receiver.url, sync_mode=True)
    theirs_ok, theirs = FALSE_VALUES[name](theirs_client)
    ours_ok, ours = FALSE_VALUES[name](ours_client)
    assert ours_ok is theirs_ok is True
    assert _comparable(ours, given_id=False) == _comparable(theirs, given_id=False)
    their_sent, our_sent = receiver.messages()
    assert _wire(our_sent, given_id=False) == _wire(their_sent, given_id=False)


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda c: c.track("u1", "E", ["plan"]), "properties must be a dict, got list"),
        (lambda c: c.track("u1", "E", context="web"), "context must be a dict, got str"),
        (lambda c: c.identify("u1", 1), "traits must be a dict, got int"),
        (lambda c: c.alias("p1", "u1", integrations=[1]), "integrations must be a dict, got list"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_its_field(call: Call, problem: str) -> None:
    with pytest.raises(segment_core.InvalidMessage, match=problem):
        call(Client("write-key", send=False))


def test_group_and_previous_ids_are_returned_as_passed_and_sent_as_text(
    receiver: Receiver, clients: list[Client]
) -> None:
    ours_client = Client("write-key", host=receiver.url, sync_mode=True)
    clients.append(ours_client)
    theirs_client = TheirClient("write-key", host=receiver.url, sync_mode=True)
    for call in (lambda c: c.group(1, 2, {"name": "Initech"}), lambda c: c.alias(3, 4)):
        _, theirs = call(theirs_client)
        _, ours = call(ours_client)
        assert _comparable(ours, given_id=False) == _comparable(theirs, given_id=False)
    assert (ours["previousId"], ours["userId"]) == (3, "4")
    _, group, _, alias = receiver.messages()
    # The Spec's ids are strings: analytics-python sends the numbers.
    assert (group["groupId"], group["userId"], alias["previousId"]) == ("2", "1", "3")


def test_an_empty_id_beside_the_other_is_kept_as_in_analytics_python(
    receiver: Receiver, clients: list[Client]
) -> None:
    ours_client = Client("write-key", host=receiver.url, sync_mode=True)
    clients.append(ours_client)
    theirs_client = TheirClient("write-key", host=receiver.url, sync_mode=True)
    calls: list[Call] = [
        lambda c: c.track("", "E", anonymous_id="a1"),
        lambda c: c.identify("u1", {"plan": "pro"}, anonymous_id=""),
    ]
    for call in calls:
        _, theirs = call(theirs_client)
        _, ours = call(ours_client)
        assert _comparable(ours, given_id=False) == _comparable(theirs, given_id=False)
    their_track, our_track, their_identify, our_identify = receiver.messages()
    assert our_track["userId"] == their_track["userId"] == ""
    assert our_identify["anonymousId"] == their_identify["anonymousId"] == ""


# -- module level, as in the README --------------------------------------------------


@pytest.fixture
def module_settings(receiver: Receiver) -> Iterator[None]:
    names = (
        "write_key",
        "host",
        "send",
        "sync_mode",
        "debug",
        "on_error",
        "default_client",
        *(f"oauth_{name}" for name in ("client_id", "client_key", "key_id", "auth_server")),
    )
    saved = {name: getattr(segment_core, name) for name in names}
    segment_core.default_client = None
    yield
    if segment_core.default_client is not None:
        segment_core.default_client.shutdown(timeout=5)
    for name, value in saved.items():
        setattr(segment_core, name, value)


def test_module_level_calls_as_in_the_readme(module_settings: None, receiver: Receiver) -> None:
    analytics = segment_core
    analytics.write_key = "YOUR_WRITE_KEY"
    analytics.host = receiver.url
    ok, msg = analytics.track("user-1", "Signed Up", {"plan": "pro"})
    assert ok and msg["properties"] == {"plan": "pro"} and msg["anonymousId"] is None
    analytics.identify("user-1", {"email": "ada@example.com"})
    analytics.flush()
    [track, identify] = receiver.wait_for_messages(2)
    assert (track["event"], identify["traits"]) == ("Signed Up", {"email": "ada@example.com"})
    assert isinstance(analytics.default_client, Client)
    assert analytics.default_client.write_key == "YOUR_WRITE_KEY"


def test_flush_alone_creates_the_default_client(module_settings: None) -> None:
    segment_core.write_key = "k"
    segment_core.send = False
    assert segment_core.flush() is True
    assert isinstance(segment_core.default_client, Client)
    assert segment_core.default_client.send is False


def test_module_level_on_error_and_sync_mode_as_in_the_docs(
    module_settings: None, receiver: Receiver
) -> None:
    failed: list[tuple[Exception, list[dict[str, Any]]]] = []

    def on_error(error: Exception, items: list[dict[str, Any]]) -> None:
        failed.append((error, items))

    segment_core.write_key = "k"
    segment_core.host = receiver.url
    segment_core.on_error = on_error
    segment_core.sync_mode = True
    receiver.fail_next(Fault(status=400))
    ok, msg = segment_core.track("u1", "Refused")
    # analytics-python raises here; never raising, the call says it was not delivered.
    assert not ok and msg["event"] == "Refused"
    [(error, items)] = failed
    assert "400" in str(error) and [item["messageId"] for item in items] == [msg["messageId"]]
    # What handlers written for analytics-python's APIError read.
    assert (error.status, error.code) == (400, "fault")  # type: ignore[attr-defined]
    assert isinstance(error.message, str)  # type: ignore[attr-defined]
    response = error.response  # type: ignore[attr-defined]
    assert (response.status_code, response.reason, response.ok) == (400, "Bad Request", False)
    assert response.json()["code"] == "fault" and response.content == response.text.encode()


def test_an_error_without_an_answer_has_no_response(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    failed: list[Exception] = []
    client = make_client(
        host="http://127.0.0.1:9", sync_mode=True, max_retries=0, timeout=2,
        on_error=lambda error, items: failed.append(error),
    )  # fmt: skip
    assert not client.track("u1", "Nowhere")[0]
    [error] = failed
    assert isinstance(error, segment_core.DeliveryError) and error.response is None


def test_module_level_on_error_false_as_analytics_pythons_tests_set_it(
    module_settings: None, receiver: Receiver
) -> None:
    segment_core.write_key = "k"
    segment_core.host = receiver.url
    segment_core.on_error = False  # type: ignore[assignment]
    assert segment_core.track("u1", "Sent")[0]
    assert segment_core.flush()
    assert [m["event"] for m in receiver.wait_for_messages(1)] == ["Sent"]


@pytest.mark.parametrize("name", ["upload_size", "proxies", "spool_dir"])
def test_a_client_option_set_at_module_level_says_it_changes_nothing(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    had = name in vars(segment_core)
    try:
        with caplog.at_level(logging.WARNING, logger="segment.core"):
            setattr(segment_core, name, None)
        assert f"segment_core.{name} is no module-level setting and changes nothing" in (
            caplog.text
        )
    finally:
        if not had:
            delattr(segment_core, name)


def test_sync_mode_waits_no_longer_than_timeout_for_a_server_in_trouble(
    receiver: Receiver,
) -> None:
    # Serverless code sends before it returns: an outage must not hold every call
    # for the whole retry policy, as the sender thread may wait.
    failures: list[Exception] = []
    client = Client(
        "k",
        host=receiver.url,
        sync_mode=True,
        timeout=1.5,
        backoff=lambda attempt: 0.4,
        on_failure=lambda message, error: failures.append(error),
    )
    receiver.fail_next(*[Fault(status=503)] * 50)
    started = time.monotonic()
    ok, msg = client.track("u1", "In an outage")
    elapsed = time.monotonic() - started
    assert not ok and msg["event"] == "In an outage"
    assert elapsed < 1.5 + 1.0, elapsed  # the retries stop before the deadline
    attempts = 50 - len(receiver.faults)
    assert 2 <= attempts <= 4, attempts  # retried within it, never past it
    [error] = failures
    assert "503" in str(error)
    # A healthy server: delivered at the first attempt.
    receiver.fail_next()
    receiver.faults.clear()
    ok, msg = client.track("u1", "Back")
    assert ok and [m["event"] for m in receiver.messages()] == ["Back"]


def test_module_level_settings_read_back_their_values() -> None:
    import segment.analytics as theirs

    # Code that reads them (analytics.timeout * 2) works; gzip is on by default here.
    for name in ("max_queue_size", "timeout", "max_retries", "oauth_auth_server", "oauth_scope"):
        assert getattr(segment_core, name) == getattr(theirs, name), name
    assert segment_core.gzip is True


def test_module_level_flags_set_as_numbers(module_settings: None, receiver: Receiver) -> None:
    segment_core.write_key = "k"
    segment_core.host = receiver.url
    segment_core.send = 0  # type: ignore[assignment]  # int(os.environ.get("SEGMENT_SEND", "0"))
    ok, _ = segment_core.track("u1", "Not sent")
    assert ok and segment_core.default_client is not None
    assert segment_core.default_client.send is False


def test_module_level_oauth_settings_as_in_the_docs(
    module_settings: None, oauth_collector: Any, key_pair: tuple[str, str]
) -> None:
    analytics = segment_core
    analytics.write_key = "YOUR_WRITE_KEY"
    analytics.host = oauth_collector.url
    analytics.oauth_client_id = "CLIENT_ID"
    analytics.oauth_client_key = key_pair[0]
    analytics.oauth_key_id = "KEY_ID"
    analytics.oauth_auth_server = oauth_collector.url
    analytics.track("u1", "With OAuth")
    assert analytics.flush(timeout=10)
    [event] = oauth_collector.wait_for(1)
    assert event["message"]["event"] == "With OAuth"
    assert _oauth_counts(oauth_collector)["issued"] == 1


# -- settings ------------------------------------------------------------------------


def test_client_takes_analytics_pythons_positional_order(receiver: Receiver) -> None:
    # Client(write_key, host, debug, max_queue_size, send, on_error, gzip, max_retries, ...)
    client = Client("write-key", receiver.url, False, 500, False, None, False, 3)
    assert (client.host, client.max_queue_size, client.send) == (receiver.url, 500, False)
    assert (client.gzip, client.max_retries) == (False, 3)
    with pytest.raises(TypeError, match="multiple values for 'host'"):
        Client("write-key", receiver.url, host=receiver.url)
    with pytest.raises(TypeError, match="at most 22 positional arguments"):
        Client("write-key", *([None] * 22))


def test_defaults_and_attributes_are_analytics_pythons() -> None:
    ours = Client("write-key", send=False)
    theirs = TheirClient("write-key", send=False)
    for name in ("write_key", "sync_mode", "timeout", "debug", "send", "on_error", "proxies"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.max_retries == 10 and ours.host == "https://api.segment.io"
    assert ours.gzip is True  # a documented difference: compression is on by default
    assert Client.log is TheirClient.log is logging.getLogger("segment")


def test_default_config_has_analytics_pythons_defaults_but_the_documented_ones() -> None:
    theirs = {k: v for k, v in vars(TheirClient.DefaultConfig).items() if not k.startswith("_")}
    # The README's "Where we differ": the host written out, gzip, batches that grow
    # under load, sent every 5 s, one batch's retries bounded by 600 s.
    differ = {"host", "gzip", "upload_size", "upload_interval", "max_total_backoff_duration"}
    for name, value in theirs.items():
        if name not in differ:
            assert getattr(Client.DefaultConfig, name) == value, name
    assert Client.DefaultConfig is segment_core.Config


def test_a_bad_call_raises_what_code_written_for_analytics_python_catches() -> None:
    for client in (Client("write-key", send=False), TheirClient("write-key", send=False)):
        with pytest.raises(AssertionError, match="properties"):
            client.track("u1", "E", ["plan"])
    with pytest.raises(ValueError, match=r"^properties must be a dict, got list$"):
        Client("write-key", send=False).track("u1", "E", ["plan"])


@pytest.mark.parametrize("name", ["write_key", "host", "gzip", "timeout", "max_retries", "send"])
def test_settings_are_read_only(name: str) -> None:
    client = Client("write-key", send=False)
    with pytest.raises(AttributeError):
        setattr(client, name, getattr(client, name))


def test_every_option_reads_as_an_attribute() -> None:
    client = Client(
        "write-key",
        send=False,
        flush_at=50,
        flush_interval=2.5,
        max_batch_size=100,
        max_in_flight=2,
        shutdown_timeout=1.5,
        before_send=lambda message: message,
    )
    for name in option_names():
        assert getattr(client, name) is getattr(client.config, name), name
    assert (client.flush_at, client.flush_interval, client.max_batch_size) == (50, 2.5, 100)
    assert (client.upload_size, client.upload_interval, client.thread) == (100, 2.5, 2)


@pytest.mark.parametrize("name", sorted(option_names() | set(ALIASES)))
def test_assigning_any_option_is_refused_by_name(name: str) -> None:
    client = Client("write-key", send=False, flush_at=50)
    before = client.config
    with pytest.raises(
        AttributeError, match=rf"^client\.{name} is read-only: .* new Client\({name}="
    ):
        setattr(client, name, 1)
    assert client.config is before and client.flush_at == 50


def test_assigning_config_is_refused() -> None:
    client = Client("write-key", send=False)
    with pytest.raises(
        AttributeError,
        match=r"^client\.config cannot be assigned.*settings are read-only: build a new Client",
    ):
        client.config = client.config  # type: ignore[misc]


def test_a_clients_methods_can_be_patched_and_other_attributes_set(
    segment_collector: Any,
) -> None:
    # unittest.mock.patch.object(client, "track") is how apps' tests stub a client.
    client = Client("write-key", host=segment_collector.url, flush_interval=0.05)
    with mock.patch.object(client, "track") as track:
        client.track("u1", "Stubbed")
    assert track.call_count == 1
    client.owner = "billing"  # an app's own note on its client
    assert client.owner == "billing"
    client.track("u1", "Sent")
    assert client.flush(timeout=5)
    segment_collector.wait_for(1, timeout=5)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Sent"]
    client.shutdown()


def test_a_subclass_sets_its_own_attributes_whatever_their_names() -> None:
    class RegionalClient(Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.hosts = ["eu", "us"]  # near a setting's name, but its own
            self.flushed_at = None

    client = RegionalClient("write-key", send=False)
    assert client.hosts == ["eu", "us"] and client.flushed_at is None
    with pytest.raises(AttributeError, match=r"^client\.host is read-only"):
        client.host = "https://elsewhere.example"  # type: ignore[misc]


def test_the_segment_logger_receives_the_clients_logs() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("segment").addHandler(handler)
    try:
        Client(None, send=True)
    finally:
        logging.getLogger("segment").removeHandler(handler)
    assert any("no write key" in r.getMessage() for r in records)
    assert all(r.name.startswith("segment.") for r in records)


# -- upload_size / max_batch_size --------------------------------------------------


@pytest.mark.parametrize("option", ["upload_size", "max_batch_size"])
def test_upload_size_caps_every_batch(
    option: str, make_client: Callable[..., Client], receiver: Receiver
) -> None:
    client = make_client(**{option: 3}, flush_interval=60)
    for index in range(10):
        client.track("u1", "E", {"i": index})
    assert client.flush(timeout=10)
    sizes = [len(r.batch) for r in receiver.ok_requests()]
    assert sum(sizes) == 10 and max(sizes) <= 3
    # A full batch is due at once: three waiting messages do not wait for flush_interval.
    client.track("u1", "E")
    client.track("u1", "E")
    client.track("u1", "E")
    assert len(receiver.wait_for_messages(13)) == 13


# -- flush() without a timeout ------------------------------------------------------


def test_flush_without_a_timeout_waits_while_a_slow_host_takes_the_batches(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    """A backfill script's ``flush()`` before it ends, as analytics-python's waits: past
    ``shutdown_timeout`` while batches keep going through; a timeout given is kept."""
    client = make_client(shutdown_timeout=2.0, upload_size=10, flush_interval=3600)
    receiver.fail_next(*[Fault(delay=0.5) for _ in range(10)])  # 5 s of answers, one by one
    for index in range(100):
        client.track("u1", "Row Imported", {"i": index})
    assert client.flush(timeout=2.0) is False
    assert client.stats()["sent"] < 100
    assert client.flush() is True  # 3 s more: longer than shutdown_timeout
    assert client.stats()["sent"] == 100
    assert len(receiver.messages()) == 100


def test_flush_without_a_timeout_takes_batches_refused_for_good_for_no_progress(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    # Each batch refused (400: not tried again) after 0.3 s: 3 s in all, none delivered.
    client = make_client(shutdown_timeout=1.0, upload_size=10, flush_interval=3600)
    receiver.fail_next(*[Fault(status=400, delay=0.3) for _ in range(10)])
    for index in range(100):
        client.track("u1", "Row Imported", {"i": index})
    assert client.flush() is False  # had it waited for every refusal: True
    assert client.stats()["sent"] == 0


def test_flush_without_a_timeout_ends_once_nothing_goes_through(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    held = threading.Event()
    client = make_client(shutdown_timeout=0.5, flush_interval=3600)
    receiver.fail_next(Fault(hold=held))
    client.track("u1", "E")
    try:
        assert client.flush() is False  # the host holds the batch: not waited for
    finally:
        held.set()


# -- proxies -------------------------------------------------------------------------


def test_a_proxy_without_a_scheme_is_used(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    proxy = receiver.url.removeprefix("http://")  # "127.0.0.1:port", as analytics-python takes
    client = make_client(host="http://segment.invalid", proxies={"http": proxy}, sync_mode=True)
    ok, _ = client.track("u1", "Through The Proxy")
    [request] = receiver.ok_requests()
    assert ok and request.path == "http://segment.invalid/v1/batch"
    assert request.batch[0]["event"] == "Through The Proxy"


def test_proxy_credentials_are_sent_to_the_proxy(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    proxy = "http://ada:s3cret@" + receiver.url.removeprefix("http://")
    client = make_client(host="http://segment.invalid", proxies={"all": proxy}, sync_mode=True)
    client.track("u1", "E")
    [request] = receiver.ok_requests()
    expected = base64.b64encode(b"ada:s3cret").decode()
    assert request.headers["proxy-authorization"] == f"Basic {expected}"
    assert "s3cret" not in repr(client.config.public_dict())


def test_no_proxy_in_proxies_bypasses_the_proxy(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    proxies = {"http": "203.0.113.16:80", "no_proxy": "127.0.0.1"}
    client = make_client(proxies=proxies, sync_mode=True)
    assert client.track("u1", "Direct")[0]
    [request] = receiver.ok_requests()
    assert request.path == "/v1/batch"


def test_the_environments_proxy_is_for_the_network_not_this_machine(
    make_client: Callable[..., Client], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client sending to a local collector (the segment_collector fixture, CI with
    # HTTP_PROXY set) reaches it directly; every other host goes through the proxy.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", receiver.url)
    port = receiver.url.rsplit(":", 1)[1]
    # Also as resolvers read them: a short or a hexadecimal address.
    local = ["localhost", "127.1", "0x7f.0.0.1"]
    for host in [f"http://{name}:{port}" for name in local] + [receiver.url]:
        assert make_client(host=host, sync_mode=True).track("u1", "Direct")[0], host
    assert make_client(host="http://segment.invalid", sync_mode=True).track("u1", "Proxied")[0]
    paths = [request.path for request in receiver.ok_requests()]
    assert paths == ["/v1/batch"] * 4 + ["http://segment.invalid/v1/batch"]


@pytest.mark.parametrize("none", [None, ""])
def test_a_scheme_mapped_to_none_goes_without_a_proxy(
    make_client: Callable[..., Client], receiver: Receiver, none: Any
) -> None:
    # requests' way to say "no proxy for this scheme", which analytics-python passes on.
    client = make_client(proxies={"http": none, "https": "203.0.113.16:80"}, sync_mode=True)
    assert client.track("u1", "Direct")[0]
    [request] = receiver.ok_requests()
    assert request.path == "/v1/batch"


def test_oauth_settings_left_empty_are_not_set(receiver: Receiver) -> None:
    # As read from unset variables: os.environ.get("SEGMENT_OAUTH_CLIENT_ID", "").
    empty = {name: "" for name in ("oauth_client_id", "oauth_client_key", "oauth_key_id")}
    client = Client("write-key", host=receiver.url, sync_mode=True, **empty)
    assert client.track("u1", "With The Write Key")[0]
    [request] = receiver.ok_requests()
    assert request.headers["authorization"].startswith("Basic ")


def test_an_empty_host_is_the_default_host(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, clients: list[Client]
) -> None:
    # As read from an unset variable: os.environ.get("MY_SEGMENT_HOST", "").
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    clients += [Client("write-key", host="", send=False), Client("write-key", "", send=False)]
    assert [client.host for client in clients] == ["https://api.segment.io"] * 2
    # Unset, as SEGMENT_HOST="" is: the environment's host comes first.
    monkeypatch.setenv("SEGMENT_HOST", receiver.url)
    client = Client("write-key", host="", sync_mode=True)
    clients.append(client)
    assert client.host == receiver.url
    assert client.track("u1", "To The Host Of The Environment")[0]
    assert [m["event"] for m in receiver.messages()] == ["To The Host Of The Environment"]


def test_an_empty_module_level_host_is_the_default_host(
    module_settings: None, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("SEGMENT_HOST", receiver.url)
    segment_core.write_key = "k"
    segment_core.host = ""
    ok, _ = segment_core.track("u1", "Sent")
    assert ok and segment_core.flush(timeout=5)
    [message] = receiver.wait_for_messages(1)
    assert message["event"] == "Sent"


def test_analytics_pythons_proxy_example_constructs() -> None:
    client = Client("write-key", proxies={"https": "203.0.113.16:80"}, send=False)
    assert client.proxies == {"https": "203.0.113.16:80"}


@pytest.mark.parametrize(
    ("proxies", "problem"),
    [
        ({"https": "ftp://203.0.113.16:80"}, "scheme 'ftp'"),
        ({"https": "socks5://203.0.113.16:1080"}, "SOCKS proxy"),
        ({"https": "http://:80"}, "has no host"),
        ({"https": " "}, "must not be empty"),
        ({"https": "203.0.113.16:99999"}, "not a proxy URL"),
        ({"https": 8080}, "strings to strings"),
        ({"htps": "203.0.113.16:80"}, "unknown key 'htps'"),
        ("203.0.113.16:80", "must be a dict"),
    ],
)
def test_an_unusable_proxy_is_refused_naming_the_option(proxies: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=f"proxies.*{problem}"):
        Client("write-key", proxies=proxies)


# -- per-message callbacks, backoff, clock and ids (analytics-go) ----------------------


def test_on_success_is_called_for_each_delivered_message(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    delivered: list[dict[str, Any]] = []
    threads: set[str] = set()

    def on_success(message: dict[str, Any]) -> None:
        delivered.append(message)
        threads.add(threading.current_thread().name)

    client = make_client(on_success=on_success)
    ids = [client.track("u1", "E", {"i": i})[1]["messageId"] for i in range(3)]
    ids.append(client.track("u1", "Big", {"i": 2**64 + 1})[1]["messageId"])
    assert client.flush(timeout=10)
    assert [m["messageId"] for m in delivered] == ids
    assert delivered[0]["properties"] == {"i": 0}
    assert delivered[3]["properties"] == {"i": 2**64 + 1}  # as sent: every digit
    assert threads == {"segment-sender-0"}


def test_on_failure_is_called_for_each_failed_message(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    failed: list[tuple[str, Exception]] = []
    receiver.fail_next(Fault(status=400))
    client = make_client(on_failure=lambda m, e: failed.append((m["event"], e)))
    client.track("u1", "First")
    client.track("u1", "Second")
    assert client.flush(timeout=10)
    assert [event for event, _ in failed] == ["First", "Second"]
    assert "400" in str(failed[0][1])


def test_a_raising_callback_is_logged_and_delivery_goes_on(
    make_client: Callable[..., Client], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(message: dict[str, Any]) -> None:
        raise RuntimeError("bug in the hook")

    client = make_client(on_success=broken)
    with caplog.at_level(logging.ERROR, logger="segment.core"):
        client.track("u1", "A")
        assert client.flush(timeout=10)
        client.track("u1", "B")
        assert client.flush(timeout=10)
    assert client.stats()["sent"] == 2
    assert "on_success hook raised" in caplog.text


def test_backoff_decides_the_delay_of_each_retry(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    attempts: list[int] = []

    def backoff(attempt: int) -> float:
        attempts.append(attempt)
        return 0.0

    receiver.fail_next(Fault(status=503), Fault(status=503))
    client = make_client(backoff=backoff, retry_backoff_min=30, retry_backoff_max=60)
    client.track("u1", "E")
    assert client.flush(timeout=10)
    assert attempts == [1, 2]
    assert len(receiver.ok_requests()) == 1


def test_retry_after_wins_over_backoff(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    # The server's wait, not the hour the policy would wait; and the batch arrives.
    receiver.fail_next(Fault(status=429, retry_after="1"))
    client = make_client(backoff=lambda attempt: 3600.0)
    client.track("u1", "E")
    assert client.flush(timeout=10)
    assert client.stats()["sent"] == 1
    assert len(receiver.ok_requests()) == 1


@pytest.mark.parametrize(
    "delay", [-1, 2**1100, 10**5000], ids=["negative", "beyond a float", "beyond its text"]
)
def test_a_broken_backoff_falls_back_to_the_default_policy(
    make_client: Callable[..., Client],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    delay: int,
) -> None:
    receiver.fail_next(Fault(status=503))
    client = make_client(backoff=lambda attempt: delay)
    with caplog.at_level(logging.ERROR, logger="segment.core"):
        client.track("u1", "E")
        assert client.flush(timeout=10)
    assert "backoff must return a number of seconds" in caplog.text
    assert len(receiver.ok_requests()) == 1


@pytest.mark.parametrize("backoff", [lambda attempt: 1 / 0, lambda attempt: "x"])
def test_a_broken_backoff_is_logged_once_per_batch(
    make_client: Callable[..., Client],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    backoff: Callable[[int], Any],
) -> None:
    client = make_client(backoff=backoff, retry_backoff_min=0.01, retry_backoff_max=0.02)
    with caplog.at_level(logging.DEBUG, logger="segment.core"):
        for event in ("First", "Second"):  # two batches, three tries each
            receiver.fail_next(Fault(status=503), Fault(status=503))
            client.track("u1", event)
            assert client.flush(timeout=10)
    records = [r for r in caplog.records if "backoff" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.ERROR, logging.DEBUG] * 2
    assert len(receiver.ok_requests()) == 2


def test_now_and_uid_make_messages_deterministic() -> None:
    ids = iter(["id-1", "id-2", "id-3"])
    client = Client("write-key", send=False, now=lambda: WHEN, uid=lambda: next(ids))
    _, first = client.track("u1", "E")
    _, second = client.identify("u1")
    _, third = client.track("u1", "E", message_id="")  # none given, as None
    assert (first["messageId"], second["messageId"], third["messageId"]) == (
        "id-1",
        "id-2",
        "id-3",
    )
    assert first["timestamp"] == second["timestamp"] == "2024-05-01T12:30:15.250Z"
    _, given = client.track("u1", "E", message_id="mine", timestamp=WHEN.replace(year=2020))
    assert given["messageId"] == "mine" and given["timestamp"].startswith("2020-")


def test_a_uid_hook_may_be_uuid4_itself() -> None:
    made: list[uuid.UUID] = []

    def uid() -> uuid.UUID:
        made.append(uuid.uuid4())
        return made[-1]

    client = Client("write-key", send=False, uid=uid)  # type: ignore[arg-type]
    assert client.track("u1", "E")[1]["messageId"] == str(made[0])
    assert Client("write-key", send=False, uid=uuid.uuid4).track("u", "E")[1]["messageId"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hooks", "problem"),
    [
        ({"now": lambda: dt.datetime(2024, 1, 1)}, "now hook must return an aware datetime"),
        ({"now": lambda: 1 / 0}, "now hook raised"),
        ({"uid": lambda: ""}, "uid hook must return a string"),
        ({"uid": lambda: 42}, "uid hook must return a string"),
        ({"now": lambda: WHEN.replace(tzinfo=_FailingZone())}, "now hook must return an aware"),
        ({"uid": lambda: "x" * 10**6}, "uid hook must return a string of 1 to 100 characters"),
        (
            {"now": lambda: dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))},
            "which no timestamp can hold",
        ),
        ({"uid": lambda: "id-\ud800"}, "uid hook returned 'id-\\ud800', which UTF-8 cannot hold"),
    ],
)
def test_a_broken_clock_or_id_hook_is_logged_and_the_call_goes_on(
    hooks: dict[str, Any], problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client("write-key", send=False, **hooks)
    with caplog.at_level(logging.ERROR, logger="segment.core"):
        ok, message = client.track("u1", "E")
    assert ok and len(message["messageId"]) == 36 and message["timestamp"].endswith("Z")
    assert problem in caplog.text
    assert len(caplog.text) < 2000  # the value described briefly, whatever its size


class _FailingZone(dt.tzinfo):
    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        raise RuntimeError("tz database not loaded")

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        raise RuntimeError("tz database not loaded")


@pytest.mark.parametrize("name", ["on_success", "on_failure", "backoff", "now", "uid"])
def test_hooks_must_be_callable(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be callable"):
        Client("write-key", **{name: 42})


# -- OAuth against the real collector -------------------------------------------------


def _key_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return _key_pair()


@pytest.fixture
def oauth_collector(key_pair: tuple[str, str]) -> Iterator[Any]:
    from segment_core.collector.oauth import OAuthServer

    with run_in_background(oauth=OAuthServer(key_pair[1])) as collector:
        yield collector


def _oauth_options(private_key: str, server: str) -> dict[str, Any]:
    return {
        "oauth_client_id": "client-1",
        "oauth_client_key": private_key,
        "oauth_key_id": "key-1",
        "oauth_auth_server": server,
    }


def _oauth_counts(collector: Any) -> dict[str, int]:
    counts: dict[str, int] = collector.summary()["oauth"]
    return counts


def test_oauth_as_analytics_python_configures_it(
    oauth_collector: Any, key_pair: tuple[str, str]
) -> None:
    options = _oauth_options(key_pair[0], oauth_collector.url)
    client = Client("write-key", host=oauth_collector.url, **options)
    try:
        client.track("u1", "Signed Up")
        client.identify("u1", {"plan": "pro"})
        assert client.flush(timeout=10)
    finally:
        client.shutdown(timeout=5)
    events = oauth_collector.wait_for(2)
    assert {e["status"] for e in events} == {"good"}
    counts = _oauth_counts(oauth_collector)
    assert counts["issued"] == 1 and counts["rejected_requests"] == 0


def test_analytics_python_itself_gets_a_token_from_the_collector(
    oauth_collector: Any, key_pair: tuple[str, str]
) -> None:
    options = _oauth_options(key_pair[0], oauth_collector.url)
    theirs = TheirClient("write-key", host=oauth_collector.url, sync_mode=True, **options)
    theirs.track("u1", "From analytics-python")
    [event] = oauth_collector.wait_for(1)
    assert event["message"]["event"] == "From analytics-python"
    assert _oauth_counts(oauth_collector)["issued"] == 1


def test_a_revoked_token_is_renewed_once_and_the_batch_resent(
    oauth_collector: Any, key_pair: tuple[str, str]
) -> None:
    import requests

    options = _oauth_options(key_pair[0], oauth_collector.url)
    client = Client("write-key", host=oauth_collector.url, sync_mode=True, **options)
    assert client.track("u1", "First")[0]
    requests.delete(f"{oauth_collector.url}/collector/oauth", timeout=10).raise_for_status()
    assert client.track("u1", "Second")[0]
    assert len(oauth_collector.wait_for(2)) == 2
    counts = _oauth_counts(oauth_collector)
    assert counts["issued"] == 2 and counts["rejected_requests"] == 1
    assert client.stats()["failed"] == 0


def test_a_token_is_renewed_before_it_expires(
    oauth_collector: Any, key_pair: tuple[str, str]
) -> None:
    import urllib3

    from segment_core.config import Config
    from segment_core.oauth import TokenSource

    now = [1000.0]
    config = Config.from_options("write-key", **_oauth_options(key_pair[0], oauth_collector.url))
    tokens = TokenSource(config, urllib3.PoolManager(), clock=lambda: now[0])
    first = tokens.token()
    now[0] += 1000  # under half of the collector's hour
    assert tokens.token() == first
    now[0] += 900  # past half: renewed while the old one is still valid
    second = tokens.token()
    assert second != first
    assert _oauth_counts(oauth_collector)["issued"] == 2


@pytest.mark.parametrize("skew", [300.0, -300.0])
def test_a_clock_minutes_off_is_corrected_at_once(
    oauth_collector: Any, key_pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    # A container's clock that drifted: the first assertion is dated outside what the
    # server takes ("used before issued", "expired"); the server's Date dates the next.
    import types

    import segment_core.oauth

    real_time = time.time
    skewed = types.SimpleNamespace(time=lambda: real_time() + skew, monotonic=time.monotonic)
    monkeypatch.setattr(segment_core.oauth, "time", skewed)
    options = _oauth_options(key_pair[0], oauth_collector.url)
    client = Client("write-key", host=oauth_collector.url, sync_mode=True, **options)
    assert client.track("u1", "First")[0]
    [event] = oauth_collector.wait_for(1)
    assert event["message"]["event"] == "First"
    counts = _oauth_counts(oauth_collector)
    assert counts["refused"] == 1 and counts["issued"] == 1


def test_a_clock_once_corrected_asks_once_per_refusal(
    oauth_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key the server does not know, on a clock minutes off: the first refusal
    # corrects the clock and asks again; later refusals do not, the clock being right.
    import types

    import segment_core.oauth

    real_time = time.time
    skewed = types.SimpleNamespace(time=lambda: real_time() + 300, monotonic=time.monotonic)
    monkeypatch.setattr(segment_core.oauth, "time", skewed)
    other_private, _ = _key_pair()
    options = _oauth_options(other_private, oauth_collector.url)
    client = Client("write-key", host=oauth_collector.url, sync_mode=True, **options)
    for _ in range(3):
        assert not client.track("u1", "E")[0]
    assert _oauth_counts(oauth_collector)["refused"] == 4


def test_a_key_the_server_does_not_know_fails_without_retrying(
    oauth_collector: Any,
) -> None:
    other_private, _ = _key_pair()
    failures: list[Exception] = []
    client = Client(
        "write-key",
        host=oauth_collector.url,
        sync_mode=True,
        on_failure=lambda message, error: failures.append(error),
        **_oauth_options(other_private, oauth_collector.url),
    )
    ok, _ = client.track("u1", "E")
    assert not ok  # sent on the calling thread, and not delivered
    assert len(failures) == 1 and "invalid_client" in str(failures[0])
    assert client.stats()["retries"] == 0
    assert _oauth_counts(oauth_collector)["refused"] == 1


def test_an_unreachable_authorization_server_is_retried_then_reported(
    receiver: Receiver, key_pair: tuple[str, str]
) -> None:
    failures: list[Exception] = []
    client = Client(
        "write-key",
        host=receiver.url,
        sync_mode=True,
        max_retries=2,
        backoff=lambda attempt: 0.0,
        on_failure=lambda message, error: failures.append(error),
        **_oauth_options(key_pair[0], "http://127.0.0.1:9"),  # nothing listens there
    )
    client.track("u1", "E")
    assert client.stats()["retries"] == 2
    assert len(failures) == 1 and "OAuth token request" in str(failures[0])
    assert receiver.ok_requests() == []


def test_the_oauth_collector_refuses_basic_auth(oauth_collector: Any) -> None:
    failures: list[Exception] = []
    client = Client(
        "write-key",
        host=oauth_collector.url,
        sync_mode=True,
        on_failure=lambda message, error: failures.append(error),
    )
    client.track("u1", "E")
    assert len(failures) == 1 and "401" in str(failures[0])
    assert oauth_collector.events() == []


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ('{"code": "fault", "message": "bad batch"}', "fault", "bad batch"),
        ('{"code": 5, "message": "five"}', 5, "five"),  # as the JSON gives it
        # Both or neither, as APIError reads them: else "unknown" and the whole text.
        ('{"message": "Forbidden"}', "unknown", '{"message": "Forbidden"}'),
        ('{"code": "rate_limited"}', "unknown", '{"code": "rate_limited"}'),
        ("", "unknown", "HTTP 403"),  # no text: what went wrong
        ('\ufeff{"code": "c", "message": "m"}', "c", "m"),  # after a BOM
        ("<html>Bad Gateway</html>", "unknown", "<html>Bad Gateway</html>"),
    ],
)
def test_a_delivery_error_reads_code_and_message_as_analytics_python_s_api_error(
    body: str, code: object, message: str
) -> None:
    error = segment_core.DeliveryError("HTTP 403", status=403, body=body)
    assert (error.code, error.message) == (code, message)
    redirected = segment_core.DeliveryError("HTTP 307", status=307, body=body)
    assert (redirected.code, redirected.message) == ("redirect", "Temporary Redirect")
