"""Every Spec rule, checked end to end: a message goes in, the reasons come out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import requests

from segment_core.collector import CollectorHandle, validate_message
from segment_core.collector.validation import is_iso8601
from tests.collector.helpers import DROP, batch, message, post

# (call, field overrides, the one expected reason)
BAD_MESSAGES: list[tuple[str, dict[str, Any], str]] = [
    ("track", {"type": DROP}, "type is required"),
    ("track", {"type": "trak"}, "type 'trak' is not one of alias, group, identify, page, "),
    ("track", {"type": 5}, "type must be a string, got number"),
    ("track", {"userId": DROP}, "userId or anonymousId is required"),
    ("track", {"userId": ""}, "userId or anonymousId is required"),
    ("track", {"userId": {"id": 1}}, "userId must be a string or a number, got object"),
    ("identify", {"anonymousId": True}, "anonymousId must be a string or a number, got boolean"),
    ("alias", {"previousId": DROP}, "previousId is required for an alias call"),
    ("alias", {"userId": DROP, "anonymousId": "a"}, "userId is required for an alias call"),
    ("alias", {"previousId": ["x"]}, "previousId must be a string or a number, got array"),
    ("track", {"event": DROP}, "event is required for a track call"),
    ("track", {"event": 42}, "event must be a string, got number"),
    ("track", {"event": "  "}, "event must not be empty"),
    ("group", {"groupId": DROP}, "groupId is required for a group call"),
    ("group", {"groupId": False}, "groupId must be a string or a number, got boolean"),
    ("track", {"properties": ["a"]}, "properties must be an object, got array"),
    ("identify", {"traits": "vip"}, "traits must be an object, got string"),
    ("track", {"context": "web"}, "context must be an object, got string"),
    ("track", {"integrations": []}, "integrations must be an object, got array"),
    ("page", {"name": 7}, "name must be a string, got number"),
    ("page", {"category": {}}, "category must be a string, got object"),
    ("screen", {"name": False}, "name must be a string, got boolean"),
    ("track", {"timestamp": "yesterday"}, "timestamp 'yesterday' is not an ISO-8601 date-time"),
    (  # digits of another script: no ISO-8601 date, and the client refuses them too
        "track",
        {"timestamp": "\u0662\u0660\u0662\u0664-01-01T00:00:00Z"},
        "timestamp '\u0662\u0660\u0662\u0664-01-01T00:00:00Z' is not an ISO-8601 date-time",
    ),
    ("track", {"timestamp": 1714564800}, "timestamp must be an ISO-8601 string, got number"),
    (  # the year 10000 once in UTC, which the client refuses too
        "track",
        {"timestamp": "9999-12-31T23:59:59-01:00"},
        "timestamp '9999-12-31T23:59:59-01:00' falls outside years 1 to 9999 in UTC",
    ),
    (
        "track",
        {"originalTimestamp": "0001-01-01T00:30:00+01:00"},
        "originalTimestamp '0001-01-01T00:30:00+01:00' falls outside years 1 to 9999 in UTC",
    ),
    (
        "track",
        {"originalTimestamp": "2024-13-01T00:00:00Z"},
        "originalTimestamp '2024-13-01T00:00:00Z' is not an ISO-8601 date-time",
    ),
    ("track", {"sentAt": "2024-05-01"}, "sentAt '2024-05-01' is not an ISO-8601 date-time"),
    ("track", {"messageId": DROP}, "messageId is required"),
    ("track", {"messageId": 12345}, "messageId must be a string, got number"),
    ("track", {"messageId": "m" * 101}, "messageId is 101 characters long; the limit is 100"),
    ("track", {"context": {"ip": 1234}}, "context.ip must be a string, got number"),
    ("track", {"context": {"ip": "not-an-ip"}}, "context.ip 'not-an-ip' is not an IP address"),
    ("track", {"context": {"library": "py"}}, "context.library must be an object, got string"),
    ("track", {"context": {"page": []}}, "context.page must be an object, got array"),
    ("track", {"context": {"active": "yes"}}, "context.active must be a boolean, got string"),
    ("track", {"context": {"userAgent": 1}}, "context.userAgent must be a string, got number"),
    (
        "track",
        {"context": {"library": {"name": "x", "version": 2}}},
        "context.library.version must be a string, got number",
    ),
    (
        "track",
        {"context": {"page": {"url": ["https://x"]}}},
        "context.page.url must be a string, got array",
    ),
    (
        "track",
        {"context": {"consent": {"categoryPreferences": {"Ads": "no"}}}},
        "context.consent.categoryPreferences.Ads must be a boolean, got string",
    ),
    (
        "track",
        {"integrations": {"Mixpanel": "yes"}},
        "integrations.Mixpanel must be a boolean or an object, got string",
    ),
    (
        "page",
        {"properties": {"search": "q=1"}},
        "properties.search 'q=1' must start with '?'",
    ),
    (
        "page",
        {"properties": {"url": "https://example.com/a#top"}},
        "properties.url 'https://example.com/a#top' must not include a #fragment",
    ),
    ("page", {"properties": {"title": 3}}, "properties.title must be a string, got number"),
    # Reserved traits and page keywords of another type than the Spec's (relayed all the
    # same: Segment takes them, and the client sends them as given).
    ("identify", {"traits": {"address": ["1 Main St"]}}, "traits.address must be an object (or"),
    ("group", {"traits": {"company": 7}}, "traits.company must be an object (or text), got number"),
    ("identify", {"traits": {"age": "thirty"}}, "traits.age must be a number, got 'thirty'"),
    ("identify", {"traits": {"age": True}}, "traits.age must be a number, got boolean"),
    ("identify", {"traits": {"email": 42}}, "traits.email must be a string, got number"),
    ("identify", {"traits": {"avatar": []}}, "traits.avatar must be a string, got array"),
    ("identify", {"traits": {"phone": {}}}, "traits.phone must be a string, got object"),
    ("identify", {"traits": {"id": [1]}}, "traits.id must be a string or a number, got array"),
    (
        "identify",
        {"traits": {"createdAt": "yesterday"}},
        "traits.createdAt 'yesterday' is not an ISO-8601 date or date-time",
    ),
    (
        "identify",
        {"traits": {"birthday": "1984-02-30"}},
        "traits.birthday '1984-02-30' is not an ISO-8601 date or date-time",
    ),
    (
        "identify",
        {"traits": {"createdAt": [2024]}},
        "traits.createdAt must be an ISO-8601 date or date-time (or a Unix time), got array",
    ),
    (
        "identify",
        {"traits": {"address": {"city": 5}}},
        "traits.address.city must be a string, got number",
    ),
    (
        "group",
        {"traits": {"company": {"employee_count": "12"}}},
        "traits.company.employee_count must be a number, got string",
    ),
    (
        "track",
        {"context": {"traits": {"email": False}}},
        "context.traits.email must be a string, got boolean",
    ),
    (
        "page",
        {"properties": {"keywords": "shoes"}},
        "properties.keywords must be an array of strings, got string",
    ),
    (
        "page",
        {"properties": {"keywords": ["shoes", "sale", 5]}},
        "properties.keywords[2] must be a string, got number",
    ),
]


@pytest.mark.parametrize(
    ("kind", "fields", "reason"), BAD_MESSAGES, ids=[r for _, _, r in BAD_MESSAGES]
)
def test_bad_message_reasons(
    segment_collector: CollectorHandle, kind: str, fields: dict[str, Any], reason: str
) -> None:
    sent = message(kind, **fields)
    assert post(segment_collector.url, batch(sent)).status_code == 200  # Segment answers 200
    [event] = segment_collector.wait_for(1)
    assert event["status"] == "bad"
    assert len(event["reasons"]) == 1, event["reasons"]
    assert event["reasons"][0].startswith(reason), event["reasons"]
    assert event["message"] == sent
    assert validate_message(sent) == event["reasons"]  # the collector's verdict, in Python
    summary = segment_collector.summary()
    assert (summary["good"], summary["bad"]) == (0, 1)


GOOD_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("track", {"userId": 42}),
    ("track", {"userId": 4.5}),
    ("track", {"userId": DROP, "anonymousId": "anon-1"}),
    ("track", {"userId": None, "anonymousId": "anon-1"}),
    ("track", {"properties": None, "context": None, "integrations": None}),
    ("track", {"timestamp": "2024-05-01T12:00:00Z"}),
    ("track", {"timestamp": "2024-05-01T12:00:00.123456+02:00"}),
    ("track", {"timestamp": "2024-05-01T12:00:00-0500"}),
    ("track", {"timestamp": "2024-05-01T12:00"}),
    ("track", {"originalTimestamp": "2024-02-29T23:59:59.999Z", "sentAt": "2024-03-01T00:00Z"}),
    ("track", {"messageId": "m" * 100}),
    ("alias", {"userId": 7, "previousId": 8}),
    ("group", {"groupId": 99}),
    # Reserved traits of the types the Spec gives them; an id a number too.
    (
        "identify",
        {
            "traits": {
                "age": 41,
                "birthday": "1984-05-17",
                "createdAt": "2024-05-01T12:00:00Z",
                "id": 7,
                "email": "a@b.c",
                "company": {"name": "Acme", "id": 3, "employee_count": 12, "plan": "pro"},
                "custom": ["anything"],
            }
        },
    ),
    ("group", {"groupId": "g1", "traits": {"address": None, "website": "https://e.com"}}),
    # The forms Segment's own documents write: text for an address or a company (the
    # Salesforce destination's), a numeric age as text, a Unix time of creation.
    ("identify", {"traits": {"company": "Initech", "address": "1 Main St"}}),
    ("group", {"groupId": "g1", "traits": {"address": "1 Main St"}}),
    ("identify", {"traits": {"age": "41", "createdAt": 1714564800, "birthday": 454118400}}),
    ("track", {"traits": {"age": "any"}}),  # a track's own traits are no reserved ones
    ("page", {"properties": {"keywords": ["shoes", "sale"]}}),
    ("page", {"name": None, "properties": {"search": "", "url": "https://e.com/?q=1"}}),
    ("page", {"properties": {"search": "?q=1", "path": "/a", "referrer": "https://r.com"}}),
    (
        "identify",
        {
            "traits": {"address": {"city": "Oslo"}, "company": {"name": "Acme"}},
            "context": {
                "ip": "2001:db8::1",
                "active": True,
                "traits": {"email": "a@b.c"},
                "consent": {"categoryPreferences": {"Ads": False, "Analytics": True}},
                "campaign": {"name": "spring", "source": "news", "custom": 3},
                "device": {"id": "d1"},
                "os": {"name": "iOS", "version": "17"},
                "groupId": 5,
            },
        },
    ),
    ("track", {"integrations": {"All": False, "Amplitude": {"session_id": 1}}}),
    ("track", {"context": {"ip": "0.0.0.0", "page": {"url": "https://e.com/x"}}}),
    ("track", {"unknownTopLevelField": {"anything": [1, 2]}}),
]


@pytest.mark.parametrize(("kind", "fields"), GOOD_VARIANTS)
def test_good_variants(
    segment_collector: CollectorHandle, kind: str, fields: dict[str, Any]
) -> None:
    sent = message(kind, **fields)
    assert post(segment_collector.url, batch(sent)).status_code == 200
    [event] = segment_collector.wait_for(1)
    assert event["status"] == "good", event["reasons"]
    assert event["reasons"] == []


def test_every_problem_of_a_message_is_listed(segment_collector: CollectorHandle) -> None:
    sent = {"type": "track", "properties": [], "timestamp": "nope"}
    assert post(segment_collector.url, batch(sent)).status_code == 200
    [event] = segment_collector.wait_for(1)
    assert event["reasons"] == [
        "messageId is required",
        "userId or anonymousId is required",
        "event is required for a track call",
        "properties must be an object, got array",
        "timestamp 'nope' is not an ISO-8601 date-time",
    ]
    # Without a messageId the event is still stored, under a generated id.
    assert event["messageId"].startswith("collector-")
    assert segment_collector.event(event["messageId"])["message"] == sent


def test_a_message_that_is_not_an_object(segment_collector: CollectorHandle) -> None:
    assert post(segment_collector.url, batch("hello", 5, None, [1])).status_code == 200
    events = segment_collector.wait_for(4)
    assert [e["message"] for e in events] == ["hello", 5, None, [1]]
    assert events[0]["reasons"] == ["the message must be a JSON object, got string"]
    assert events[3]["reasons"] == ["the message must be a JSON object, got array"]
    assert segment_collector.summary()["by_type"] == {
        "unknown": {"total": 4, "good": 0, "bad": 4, "duplicates": 0}
    }


def test_invalid_batch_sent_at_marks_every_message(segment_collector: CollectorHandle) -> None:
    body = batch(message(), message(), sentAt="last tuesday")
    assert post(segment_collector.url, body).status_code == 200
    events = segment_collector.wait_for(2)
    for event in events:
        assert event["reasons"] == [
            "the batch's sentAt 'last tuesday' is not an ISO-8601 date-time string"
        ]
        assert event["sentAt"] == "last tuesday"  # kept as sent


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2024-05-01T12:00:00Z", True),
        ("2024-05-01T12:00:00.1Z", True),
        ("2024-05-01t12:00:00z", True),
        ("2024-05-01T12:00:00+05:30", True),
        ("2024-05-01T23:59:59.123456789", True),
        ("2024-05-01 12:00:00Z", False),
        ("2024-05-01", False),
        ("2024-02-30T00:00:00Z", False),
        ("2024-05-01T24:00:00Z", False),
        ("2024-05-01T12:00:00+25:00", False),
        ("2024-05-01T12:00:60Z", False),
        ("20240501T120000Z", False),
        ("", False),
        (None, False),
        (1714564800, False),
    ],
)
def test_iso8601(value: object, valid: bool) -> None:
    assert is_iso8601(value) is valid


def test_validate_message_never_raises_on_odd_input() -> None:
    odd: list[object] = [None, 1, "x", [], {}, {"type": None}, {"context": {"consent": []}}]
    for value in odd:
        assert isinstance(validate_message(value), list)


def test_a_lone_surrogate_marks_only_its_message_bad(segment_collector: CollectorHandle) -> None:
    # JSON.stringify writes half an emoji as a lone surrogate escape: valid JSON,
    # text UTF-8 cannot hold. The collector stores U+FFFD in its place.
    good, cut = message(), message(properties={"title": "abc", "k": 1})
    body = orjson.dumps(batch(good, cut))
    body = body.replace(b'"abc"', b'"abc\\ud83d"').replace(b'"k"', b'"k\\udc00"')
    assert post(segment_collector.url, data=body).status_code == 200
    stored_good, stored_cut = segment_collector.wait_for(2)
    assert (stored_good["messageId"], stored_good["status"]) == (good["messageId"], "good")
    assert stored_cut["reasons"] == [
        "properties.title: the text holds a lone surrogate '\\ud83d' (half of a UTF-16 pair), "
        "which UTF-8 cannot encode; stored as U+FFFD",
        "properties key 'k\\udc00': the text holds a lone surrogate '\\udc00' (half of a UTF-16 "
        "pair), which UTF-8 cannot encode; stored as U+FFFD",
    ]
    assert stored_cut["message"]["properties"] == {"title": "abc\ufffd", "k\ufffd": 1}
    single = orjson.dumps({**message(), "sentAt": "now", "writeKey": "key"})
    single = single.replace(b'"now"', b'"\\ud800"').replace(b'"key"', b'"k\\ud800"')
    assert post(segment_collector.url, data=single, path="/v1/track").status_code == 200
    stored_single = segment_collector.wait_for(3)[2]
    assert stored_single["sentAt"] == "\ufffd"
    assert stored_single["reasons"][0].startswith("sentAt: the text holds a lone surrogate")
    # Everything that serves stored events still works.
    assert (segment_collector.summary()["good"], segment_collector.summary()["bad"]) == (1, 2)
    assert segment_collector.event(stored_cut["messageId"])["status"] == "bad"
    assert requests.get(segment_collector.url + "/", timeout=10).status_code == 200


def test_message_ids_that_differ_by_their_lone_surrogates_stay_two_messages(
    segment_collector: CollectorHandle,
) -> None:
    first, second = message(event="First"), message(event="Second")
    body = orjson.dumps(batch(first, second, first))  # the first twice: a retry
    body = body.replace(first["messageId"].encode(), b"id-\\ud800")
    body = body.replace(second["messageId"].encode(), b"id-\\udfff")
    assert post(segment_collector.url, data=body).status_code == 200
    stored = segment_collector.wait_for(2)
    assert [(m["messageId"], m["message"]["event"]) for m in stored] == [
        ("id-\\ud800", "First"),
        ("id-\\udfff", "Second"),
    ]
    assert stored[0]["reasons"] == [
        "messageId: the text holds a lone surrogate '\\ud800' (half of a UTF-16 pair), "
        "which UTF-8 cannot encode; stored with its escapes written out"
    ]
    assert segment_collector.summary()["duplicates"] == 1
    assert segment_collector.event("id-\\udfff")["message"]["event"] == "Second"


def test_a_body_refused_for_more_than_lone_surrogates_is_still_invalid(
    segment_collector: CollectorHandle,
) -> None:
    for value in (b"NaN", b"1e999"):
        body = orjson.dumps(batch(message(event="abc", properties={"v": 0})))
        body = body.replace(b'"abc"', b'"abc\\ud83d"').replace(b'"v":0', b'"v":' + value)
        response = post(segment_collector.url, data=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_json"


class _NullLike:
    """As pandas' NA: ``==`` answers another one, whose truth raises."""

    def __eq__(self, other: object) -> Any:
        return _NullLike()

    def __bool__(self) -> bool:
        raise TypeError("boolean value of NA is ambiguous")

    __hash__ = object.__hash__


@pytest.mark.parametrize(
    "field", ["type", "userId", "anonymousId", "event", "messageId", "timestamp", "name"]
)
def test_a_value_whose_comparison_answers_no_bool_is_a_reason_not_an_error(field: str) -> None:
    message: dict[str, Any] = {"type": "track", "event": "E", "messageId": "m1", "userId": "u1"}
    message[field] = _NullLike()
    reasons = validate_message(message)
    assert any(reason.startswith(f"{field} ") for reason in reasons), reasons
