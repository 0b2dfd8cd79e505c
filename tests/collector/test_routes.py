"""The `/v1/*` routes: what they accept, where the write key comes from, merging."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import requests

from segment_core import Client, DeliveryError
from segment_core.collector import CollectorHandle, run_in_background
from segment_core.collector.app import create_app
from segment_core.masking import masked_with_fingerprint
from tests.collector.helpers import DROP, assert_error, batch, message, post

SINGLE_ROUTES = ["track", "identify", "page", "screen", "group", "alias"]


@pytest.mark.parametrize("route", ["batch", "import"])
def test_batch_routes_store_every_message(segment_collector: CollectorHandle, route: str) -> None:
    messages = [message(kind) for kind in SINGLE_ROUTES]
    response = post(segment_collector.url, batch(*messages), path=f"/v1/{route}")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    events = segment_collector.wait_for(len(messages))
    assert [e["messageId"] for e in events] == [m["messageId"] for m in messages]
    for event, sent in zip(events, messages, strict=True):
        assert event["status"] == "good", event["reasons"]
        assert event["message"] == sent
        assert event["endpoint"] == f"/v1/{route}"
        assert event["sentAt"] == "2024-05-01T12:00:01.000Z"
        assert event["receivedAt"].endswith("Z")


@pytest.mark.parametrize("route", SINGLE_ROUTES)
def test_single_call_routes(segment_collector: CollectorHandle, route: str) -> None:
    sent = message(route, sentAt="2024-05-01T12:00:02Z")
    response = post(segment_collector.url, {**sent, "writeKey": "key-1"}, path=f"/v1/{route}")
    assert response.status_code == 200, response.text
    event = segment_collector.event(sent["messageId"])
    assert event["status"] == "good", event["reasons"]
    assert event["message"] == sent  # the write key is not part of the message
    assert event["endpoint"] == f"/v1/{route}"
    assert event["sentAt"] == "2024-05-01T12:00:02Z"
    assert (event["writeKey"], event["writeKeySource"]) == (
        masked_with_fingerprint("key-1"),
        "body",
    )


def test_a_write_key_inside_batched_messages_is_never_stored(
    segment_collector: CollectorHandle,
) -> None:
    # analytics.js in batching mode puts the key in every message.
    sent = [message("track"), message("page")]
    keyed = [{**m, "writeKey": "secret-key-1"} for m in sent]
    response = post(segment_collector.url, batch(*keyed), auth=("secret-key-1", ""))
    assert response.status_code == 200, response.text
    for original in sent:
        event = segment_collector.event(original["messageId"])
        assert event["message"] == original
        assert event["writeKey"] == masked_with_fingerprint("secret-key-1")
    assert "secret-key-1" not in str(segment_collector.events())


def test_single_call_route_implies_the_type(segment_collector: CollectorHandle) -> None:
    sent = message("track", type=DROP)
    assert post(segment_collector.url, sent, path="/v1/track").status_code == 200
    event = segment_collector.event(sent["messageId"])
    assert event["status"] == "good", event["reasons"]
    assert event["message"]["type"] == "track"


def test_single_call_route_with_another_type_is_bad(segment_collector: CollectorHandle) -> None:
    sent = message("identify")
    assert post(segment_collector.url, sent, path="/v1/track").status_code == 200
    event = segment_collector.event(sent["messageId"])
    assert event["status"] == "bad"
    assert event["reasons"] == ["type 'identify' does not match the route /v1/track"]


def test_gzip_body(segment_collector: CollectorHandle) -> None:
    sent = message()
    response = post(segment_collector.url, batch(sent), gzipped=True)
    assert response.status_code == 200, response.text
    assert segment_collector.event(sent["messageId"])["message"] == sent


def test_identity_content_encoding_is_accepted(segment_collector: CollectorHandle) -> None:
    sent = message()
    response = post(segment_collector.url, batch(sent), headers={"Content-Encoding": "identity"})
    assert response.status_code == 200


def test_unsupported_content_encoding(segment_collector: CollectorHandle) -> None:
    response = post(segment_collector.url, batch(message()), headers={"Content-Encoding": "br"})
    assert_error(response, 400, "unsupported_encoding")
    assert segment_collector.summary()["total"] == 0


@pytest.mark.parametrize(
    ("auth", "body_key", "expected"),
    [
        (("key-1", ""), None, ("… sha256:be297454", "basic")),
        (None, "key-1", ("… sha256:be297454", "body")),
        (("write-key-0123456789", ""), None, ("writ… sha256:9f3302c1", "basic")),
        (("key-1", ""), "key-1", ("… sha256:be297454", "basic+body")),
        (None, None, (None, None)),
    ],
)
def test_write_key_source_is_recorded(
    segment_collector: CollectorHandle,
    auth: tuple[str, str] | None,
    body_key: str | None,
    expected: tuple[str | None, str | None],
) -> None:
    sent = message()
    body = batch(sent) if body_key is None else batch(sent, writeKey=body_key)
    assert post(segment_collector.url, body, auth=auth).status_code == 200
    event = segment_collector.event(sent["messageId"])
    assert (event["writeKey"], event["writeKeySource"]) == expected


@pytest.mark.parametrize(
    ("body_key", "kind"),
    [(5, "number"), (True, "boolean"), (["k"], "array"), ({"k": 1}, "object")],
)
@pytest.mark.parametrize("route", ["batch", "track"])
def test_a_write_key_in_the_body_that_is_no_string_is_refused(
    segment_collector: CollectorHandle,
    keyed_collector: CollectorHandle,
    route: str,
    body_key: object,
    kind: str,
) -> None:
    sent = message()
    body = batch(sent, writeKey=body_key) if route == "batch" else {**sent, "writeKey": body_key}
    keyed_collector.reset()
    for collector, auth in (
        (segment_collector, None),
        (keyed_collector, None),
        (keyed_collector, ("secret", "")),
    ):
        response = post(collector.url, body, auth=auth, path=f"/v1/{route}")
        error = assert_error(response, 400, "invalid_write_key")
        assert error["message"] == f"writeKey in the body must be a string, got {kind}"
        assert collector.summary()["total"] == 0


def test_different_keys_in_header_and_body_are_refused(segment_collector: CollectorHandle) -> None:
    response = post(segment_collector.url, batch(message(), writeKey="b"), auth=("a", ""))
    assert_error(response, 401, "unauthorized")


def test_malformed_basic_header_is_refused(segment_collector: CollectorHandle) -> None:
    response = post(segment_collector.url, batch(message()), headers={"Authorization": "Basic %%%"})
    assert_error(response, 401, "unauthorized")


def test_bearer_token_is_not_taken_for_a_write_key(segment_collector: CollectorHandle) -> None:
    sent = message()
    response = post(
        segment_collector.url, batch(sent), headers={"Authorization": "Bearer some-token"}
    )
    assert response.status_code == 200
    assert segment_collector.event(sent["messageId"])["writeKeySource"] is None


@pytest.fixture(scope="module")
def keyed_collector() -> Iterator[CollectorHandle]:
    with run_in_background(write_key="secret") as handle:
        yield handle


@pytest.mark.parametrize(
    ("auth", "body_key"),
    [(("wrong", ""), None), (None, "wrong"), (None, None)],
    ids=["wrong-basic", "wrong-body", "missing"],
)
def test_configured_write_key_refuses_others(
    keyed_collector: CollectorHandle, auth: tuple[str, str] | None, body_key: str | None
) -> None:
    keyed_collector.reset()
    body = batch(message()) if body_key is None else batch(message(), writeKey=body_key)
    assert_error(post(keyed_collector.url, body, auth=auth), 401, "unauthorized")
    assert keyed_collector.summary()["total"] == 0
    assert keyed_collector.summary()["requests"]["rejected"] == 1


def test_an_empty_write_key_is_no_key() -> None:
    # --write-key "$SEGMENT_WRITE_KEY" with the variable unset: no key could match it.
    with run_in_background(write_key="") as handle:
        assert post(handle.url, batch(message())).status_code == 200
        assert handle.summary()["total"] == 1
        assert requests.get(handle.url + "/", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("auth", "body_key"), [(("secret", ""), None), (None, "secret")], ids=["basic", "body"]
)
def test_configured_write_key_accepts_itself(
    keyed_collector: CollectorHandle, auth: tuple[str, str] | None, body_key: str | None
) -> None:
    keyed_collector.reset()
    body = batch(message()) if body_key is None else batch(message(), writeKey=body_key)
    assert post(keyed_collector.url, body, auth=auth).status_code == 200
    assert keyed_collector.wait_for(1)[0]["writeKey"] == masked_with_fingerprint("secret")


def test_basic_header_is_username_and_empty_password(keyed_collector: CollectorHandle) -> None:
    token = base64.b64encode(b"secret:").decode()
    response = post(
        keyed_collector.url, batch(message()), headers={"Authorization": f"Basic {token}"}
    )
    assert response.status_code == 200


def test_batch_context_and_integrations_are_merged(segment_collector: CollectorHandle) -> None:
    own = message(context={"ip": "10.0.0.2", "locale": "fr-FR"}, integrations={"Mixpanel": False})
    bare = message(context=DROP)
    body = batch(
        own,
        bare,
        context={"ip": "10.0.0.1", "library": {"name": "batch-lib", "version": "2"}},
        integrations={"All": True, "Mixpanel": True},
    )
    assert post(segment_collector.url, body).status_code == 200
    merged = segment_collector.event(own["messageId"])["message"]
    assert merged["context"] == {
        "ip": "10.0.0.2",
        "locale": "fr-FR",
        "library": {"name": "batch-lib", "version": "2"},
    }
    assert merged["integrations"] == {"All": True, "Mixpanel": False}
    filled = segment_collector.event(bare["messageId"])
    assert filled["status"] == "good"
    assert filled["message"]["context"] == {
        "ip": "10.0.0.1",
        "library": {"name": "batch-lib", "version": "2"},
    }
    assert filled["message"]["integrations"] == {"All": True, "Mixpanel": True}


def test_batch_context_that_is_not_an_object(segment_collector: CollectorHandle) -> None:
    response = post(segment_collector.url, batch(message(), context=["no"]))
    assert_error(response, 400, "invalid_batch")


def test_unknown_route_and_wrong_method(segment_collector: CollectorHandle) -> None:
    assert_error(post(segment_collector.url, batch(), path="/v1/nope"), 404, "not_found")
    response = requests.get(segment_collector.url + "/v1/batch", timeout=10)
    assert_error(response, 405, "method_not_allowed")
    assert_error(requests.get(segment_collector.url + "/nowhere", timeout=10), 404, "not_found")


def test_a_host_with_a_v1_of_its_own_is_told_where_events_go(
    segment_collector: CollectorHandle,
) -> None:
    # Client(host=".../v1") posts to /v1/v1/batch: the answer and the client's error
    # name the route from the root, and the URL the client posted to.
    answer = post(segment_collector.url, batch(message()), path="/v1/v1/batch")
    assert answer.json()["message"] == "there is no route /v1/v1/batch; events go to /v1/batch"
    prefixed = post(segment_collector.url, batch(message()), path="/seg/v1/v1/batch")
    assert prefixed.json()["message"].endswith("; events go to /v1/batch")
    for path in ("/api/v1/batch", "/V1/batch", "/v2/track"):  # another service's paths
        answer = post(segment_collector.url, batch(message()), path=path)
        endpoint = path.rpartition("/")[2]
        assert answer.json()["message"] == f"there is no route {path}; events go to /v1/{endpoint}"
    errors: list[DeliveryError] = []
    client = Client(
        "key-1",
        host=segment_collector.url + "/v1",
        sync_mode=True,
        on_error=lambda error, batch: errors.append(error),
    )
    assert client.track("u1", "Lost")[0] is False
    [error] = errors
    assert str(error).startswith(f"HTTP 404 from {segment_collector.url}/v1/v1/batch: ")
    assert error.message == "there is no route /v1/v1/batch; events go to /v1/batch"
    assert segment_collector.summary()["total"] == 0


def test_page_is_served(segment_collector: CollectorHandle) -> None:
    response = requests.get(segment_collector.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Segment collector</title>" in response.text
    # Never framed by another origin's page, where a click on its Reset button would
    # come from the collector's own origin.
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_integers_beyond_64_bits_are_stored_with_every_digit(
    segment_collector: CollectorHandle,
) -> None:
    # The client sends every digit; what the collector stores and serves is what came.
    client = Client("k", host=segment_collector.url)
    properties = {"n": 2**100, "m": -(10**20), "small": 7, "f": 1.5}
    client.track(10**20, "Big Numbers", properties)
    assert client.flush(10)
    client.shutdown(timeout=5)
    [event] = segment_collector.events(userId="100000000000000000000")
    assert event["status"] == "good"
    assert event["message"]["properties"] == properties
    assert event["message"]["userId"] == "100000000000000000000"
    # A number too long for 64 bits anywhere in a body sent by hand: kept too.
    raw = json.dumps(batch(message("track", event="Raw", userId="u", count=2**70)))
    post(segment_collector.url, data=raw.encode())
    [stored] = segment_collector.events(event="Raw")
    assert stored["message"]["count"] == 2**70
    # The live stream serves them as stored.
    text = b""
    with requests.get(
        segment_collector.url + "/collector/stream", params={"after": 0}, stream=True, timeout=10
    ) as stream:
        for chunk in stream.iter_content(chunk_size=None):
            text += chunk
            if b"event: summary" in text:
                break
    assert str(2**70).encode() in text and str(2**100).encode() in text


def test_an_integer_beyond_a_floats_range_loses_no_event_of_its_batch(
    segment_collector: CollectorHandle,
) -> None:
    # orjson refuses to read 10**400 (a float's range ends near 1.8e308); the client
    # sends such integers, up to its limit of 13,000 bits, with every digit.
    client = Client("k", host=segment_collector.url, flush_at=100)
    try:
        for index in range(10):
            client.track("u1", "Innocent Event", {"i": index})
        huge = {"n": 10**400, "m": -(2**13000 - 1)}
        assert client.track("u1", "Odd Event", huge)[0]
        assert client.flush(10)
        assert client.stats()["failed"] == 0
    finally:
        client.shutdown(timeout=5)
    events = segment_collector.wait_for(11, userId="u1")
    assert [e["status"] for e in events] == ["good"] * 11, [e["reasons"] for e in events]
    [odd] = segment_collector.events(event="Odd Event")  # read back from the store
    assert odd["message"]["properties"] == huge


@pytest.mark.parametrize(
    "number",
    [b"1" + b"0" * 400 + b".5", b"1" + b"0" * 400 + b"e1", b"-1e999", b"NaN"],
    ids=["fraction", "exponent", "infinity", "nan"],
)
def test_numbers_beyond_a_float_beside_long_integers_are_still_refused(
    segment_collector: CollectorHandle, number: bytes
) -> None:
    body = b'{"batch": [{"type": "track", "event": "E", "userId": "u", "n": %s, "big": %s}]}'
    data = body % (number, b"9" * 400)
    assert_error(post(segment_collector.url, data=data), 400, "invalid_json")
    assert segment_collector.summary()["total"] == 0


@pytest.mark.parametrize("key", ["a:b", " key", "two words"])
def test_a_write_key_no_client_could_send_is_refused_at_once(key: str) -> None:
    with pytest.raises(ValueError, match="write_key"):
        create_app(write_key=key)


@pytest.mark.parametrize("key", ["clé", "ключ"])
def test_a_non_ascii_write_key_works_for_clients_and_the_handle(key: str) -> None:
    with run_in_background(write_key=key) as collector:
        client = Client(key, host=collector.url)
        assert client.track("u", "Keyed")[0]
        assert client.flush(timeout=10)
        assert [e["message"]["event"] for e in collector.events()] == ["Keyed"]
        client.shutdown(timeout=5)
