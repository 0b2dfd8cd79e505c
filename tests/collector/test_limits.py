"""Size limits (exactly at and one over), bad JSON, bad gzip: 400 with a JSON error."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import orjson
import pytest

from segment_core.collector import CollectorHandle
from segment_core.spec import MAX_NESTING_DEPTH
from tests.collector.helpers import assert_error, batch, message, new_id, post

MESSAGE_LIMIT = 32 * 1024
REQUEST_LIMIT = 500 * 1024
BATCH_LIMIT = 2500


def message_of_size(size: int) -> dict[str, Any]:
    """A valid message whose compact JSON is exactly `size` bytes."""
    sent = message(properties={"padding": ""})
    sent["properties"]["padding"] = "x" * (size - len(orjson.dumps(sent)))
    assert len(orjson.dumps(sent)) == size
    return sent


def body_of_size(size: int) -> bytes:
    """A batch body of exactly `size` bytes: big messages, then trailing whitespace."""
    messages = [message_of_size(30_000) for _ in range(size // 31_000)]
    body = orjson.dumps(batch(*messages))
    assert len(body) <= size
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("gzipped", [False, True])
def test_message_exactly_at_the_limit(segment_collector: CollectorHandle, gzipped: bool) -> None:
    sent = message_of_size(MESSAGE_LIMIT)
    assert post(segment_collector.url, batch(sent), gzipped=gzipped).status_code == 200
    assert segment_collector.event(sent["messageId"])["status"] == "good"


def test_message_one_byte_over_the_limit(segment_collector: CollectorHandle) -> None:
    small = message()
    response = post(segment_collector.url, batch(small, message_of_size(MESSAGE_LIMIT + 1)))
    body = assert_error(response, 400, "message_too_large")
    assert "message #1" in body["message"] and "32768" in body["message"]
    assert segment_collector.summary()["total"] == 0  # the whole batch is refused


def test_a_message_over_the_limit_once_the_batch_context_is_merged(
    segment_collector: CollectorHandle,
) -> None:
    # A small body whose shared context would make every message 100 KB: refused,
    # not stored 300 times over.
    shared = {"context": {"padding": "x" * 100_000}}
    small = [message() for _ in range(300)]
    response = post(segment_collector.url, {**batch(*small), **shared})
    body = assert_error(response, 400, "message_too_large")
    assert "message #0" in body["message"] and "once the batch's context" in body["message"]
    assert segment_collector.summary()["total"] == 0
    # Merged and within the limit: stored as merged.
    fits = {"context": {"padding": "x" * 1_000}}
    assert post(segment_collector.url, {**batch(message()), **fits}).status_code == 200
    [stored] = segment_collector.events()
    assert stored["message"]["context"]["padding"] == "x" * 1_000


def test_single_route_message_limit(segment_collector: CollectorHandle) -> None:
    at_limit = message_of_size(MESSAGE_LIMIT)
    assert post(segment_collector.url, at_limit, path="/v1/track").status_code == 200
    over = message_of_size(MESSAGE_LIMIT + 1)
    assert_error(post(segment_collector.url, over, path="/v1/track"), 400, "message_too_large")


def test_a_single_call_without_type_is_measured_as_sent(
    segment_collector: CollectorHandle,
) -> None:
    # Segment's HTTP API documents single calls without "type": the route names
    # the call, and the type the collector adds is not part of what was sent.
    at_limit = message_of_size(MESSAGE_LIMIT)
    del at_limit["type"]
    at_limit["properties"]["padding"] += "x" * len(b',"type":"track"')
    assert len(orjson.dumps(at_limit)) == MESSAGE_LIMIT
    assert post(segment_collector.url, at_limit, path="/v1/track").status_code == 200
    stored = segment_collector.event(at_limit["messageId"])
    assert (stored["status"], stored["message"]["type"]) == ("good", "track")
    over = {**at_limit, "messageId": new_id(), "properties": {"padding": "x" * MESSAGE_LIMIT}}
    body = assert_error(
        post(segment_collector.url, over, path="/v1/track"), 400, "message_too_large"
    )
    assert body["message"].startswith("the message is ") and "batch" not in body["message"]


@pytest.mark.parametrize("gzipped", [False, True])
def test_request_exactly_at_the_limit(segment_collector: CollectorHandle, gzipped: bool) -> None:
    data = body_of_size(REQUEST_LIMIT)
    response = post(segment_collector.url, data=data, gzipped=gzipped)
    assert response.status_code == 200, response.text
    assert segment_collector.summary()["good"] == REQUEST_LIMIT // 31_000


@pytest.mark.parametrize("gzipped", [False, True])
def test_request_one_byte_over_the_limit(segment_collector: CollectorHandle, gzipped: bool) -> None:
    response = post(segment_collector.url, data=body_of_size(REQUEST_LIMIT + 1), gzipped=gzipped)
    assert_error(response, 400, "request_too_large")
    assert segment_collector.summary()["total"] == 0


def test_gzip_bomb_is_refused(segment_collector: CollectorHandle) -> None:
    data = gzip.compress(b" " * (20 * 1024 * 1024))  # 20 MB of spaces, ~20 KB gzipped
    response = post(segment_collector.url, data=data, headers={"Content-Encoding": "gzip"})
    assert_error(response, 400, "request_too_large")


def test_huge_body_is_refused_with_a_400(segment_collector: CollectorHandle) -> None:
    response = post(segment_collector.url, data=b"[" + b"1," * (3 * 1024 * 1024) + b"1]")
    assert_error(response, 400, "request_too_large")


def test_batch_of_exactly_2500_messages(segment_collector: CollectorHandle) -> None:
    messages = [
        {"type": "track", "event": "e", "userId": "u", "messageId": new_id()}
        for _ in range(BATCH_LIMIT)
    ]
    response = post(segment_collector.url, batch(*messages))
    assert response.status_code == 200, response.text
    assert segment_collector.summary()["good"] == BATCH_LIMIT


def test_batch_of_2501_messages(segment_collector: CollectorHandle) -> None:
    messages = [
        {"type": "track", "event": "e", "userId": "u", "messageId": new_id()}
        for _ in range(BATCH_LIMIT + 1)
    ]
    body = assert_error(post(segment_collector.url, batch(*messages)), 400, "too_many_messages")
    assert "2501" in body["message"]
    assert segment_collector.summary()["total"] == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"not json", b'{"batch": [}', b"\xff\xfe", b'{"batch": [1e999]}', b"[NaN]"],
    ids=["empty", "open-brace", "text", "broken-array", "bad-utf8", "infinity", "nan"],
)
def test_invalid_json(segment_collector: CollectorHandle, data: bytes) -> None:
    assert_error(post(segment_collector.url, data=data), 400, "invalid_json")
    assert_error(post(segment_collector.url, data=data, path="/v1/track"), 400, "invalid_json")
    assert segment_collector.summary()["requests"]["rejected"] == 2


@pytest.mark.parametrize(
    "data",
    [
        b"definitely not gzip",
        gzip.compress(b'{"batch": []}')[:-6],  # truncated
        b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic",
        zlib.compress(b'{"batch": []}'),  # zlib, not gzip
    ],
    ids=["text", "truncated", "magic-then-garbage", "zlib"],
)
def test_bad_gzip(segment_collector: CollectorHandle, data: bytes) -> None:
    response = post(segment_collector.url, data=data, headers={"Content-Encoding": "gzip"})
    assert_error(response, 400, "invalid_gzip")


def test_concatenated_gzip_members_are_read(segment_collector: CollectorHandle) -> None:
    sent = message()
    body = orjson.dumps(batch(sent))
    data = gzip.compress(body[:10]) + gzip.compress(body[10:])
    response = post(segment_collector.url, data=data, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert segment_collector.event(sent["messageId"])["message"] == sent


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "invalid_body"),
        ("text", "invalid_body"),
        ({"batch": {"type": "track"}}, "invalid_batch"),
        ({"sentAt": "2024-05-01T00:00:00Z"}, "invalid_batch"),
    ],
)
def test_malformed_batch(segment_collector: CollectorHandle, body: object, code: str) -> None:
    assert_error(post(segment_collector.url, body), 400, code)


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
@pytest.mark.parametrize("depth", [254, 256, 300, 1000])
def test_deeply_nested_message_is_refused_as_too_deep(
    segment_collector: CollectorHandle, depth: int, path: str
) -> None:
    # orjson parses up to 1024 levels but writes only 254: such a message is still
    # refused for its depth, as a shallower one is, and never half-stored.
    nested = "[" * depth + "]" * depth
    sent = message(properties={"deep": nested})
    data = json.dumps(batch(sent) if path == "/v1/batch" else sent).replace(f'"{nested}"', nested)
    response = post(segment_collector.url, data=data.encode(), path=path)
    assert_error(response, 400, "message_too_deep")
    assert ".properties.deep" in response.json()["message"]
    assert segment_collector.summary()["total"] == 0


def _nested(levels: int) -> object:
    deep: object = "bottom"
    for _ in range(levels):
        deep = [deep]
    return deep


def test_nesting_within_the_shared_limit_is_stored_and_served(
    segment_collector: CollectorHandle,
) -> None:
    # The message is level 1 and its properties level 2: the rest is the lists.
    sent = message(properties={"deep": _nested(MAX_NESTING_DEPTH - 2)})
    assert post(segment_collector.url, batch(sent)).status_code == 200
    assert segment_collector.event(sent["messageId"])["message"] == sent
    assert [e["message"] for e in segment_collector.events()] == [sent]


@pytest.mark.parametrize("levels", [MAX_NESTING_DEPTH - 1, 250])
def test_nesting_beyond_the_shared_limit_is_refused(
    segment_collector: CollectorHandle, levels: int
) -> None:
    sent = message(properties={"deep": _nested(levels)})
    response = post(segment_collector.url, batch(sent))
    assert_error(response, 400, "message_too_deep")
    assert "message #0.properties.deep" in response.json()["message"]
    assert segment_collector.summary()["total"] == 0
    assert segment_collector.events() == []  # and the query API still answers
