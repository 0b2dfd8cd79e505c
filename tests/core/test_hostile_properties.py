"""Generated hostile values: the client refuses them naming a field, or sends what the
collector's own ingestion accepts as good."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_core import Client, InvalidMessage
from segment_core.collector.ingest import Limits, RequestError, build_records
from segment_core.encoding import decode, encode
from segment_core.spec import reserved_field_problems
from segment_core.testing import capture

PROPERTIES = settings(max_examples=150, deadline=None)


class Tier(str, enum.Enum):
    GOLD = "gold"


class Label(str):
    pass


text = st.text(max_size=12)
str_like = text | text.map(Label) | st.just(Tier.GOLD)
numbers = (
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and infinities included
    | st.decimals()  # NaN, sNaN and infinities included
    | st.builds(lambda: 10**5000)  # built lazily: its repr cannot be written
)
leaves = (
    st.none()
    | st.booleans()
    | numbers
    | str_like
    | st.datetimes()
    | st.dates()
    | st.uuids()
    | st.just(object())
)
keys = str_like | st.integers(-3, 3) | st.none() | st.booleans() | st.floats(-2, 2) | st.tuples()
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=25,
)
ids = st.none() | str_like | st.integers(-(2**70), 2**70) | st.floats() | st.booleans()
timestamps = (
    st.none()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.datetimes().map(lambda d: d.isoformat())
    | text
)
integrations = st.none() | st.dictionaries(text, st.booleans() | values, max_size=3)
contexts = st.none() | st.dictionaries(
    st.sampled_from(["ip", "active", "library", "page", "locale", "traits", "extra"]) | text,
    values,
    max_size=4,
)

# Every InvalidMessage starts with the field it is about.
FIELD = re.compile(
    r"^(message\b|before_send|event|user_id|anonymous_id|group_id|previous_id|message_id|"
    r"timestamp|properties|traits|context|integrations|name|category|userId or|user_id or)"
)


def _collector_verdict(message: dict[str, Any]) -> list[str]:
    """What the collector's own ingestion says of the message as the client encoded it,
    but for the types of reserved traits, which the client sends as given (the
    collector marks them bad, and relays them: Segment takes them)."""
    sent = decode(encode(message))
    try:
        [record] = build_records(
            {"batch": [sent], "sentAt": "2024-01-01T00:00:00.000Z"},
            "batch",
            write_key="k",
            write_key_source="basic",
            received_at="2024-01-01T00:00:00.000Z",
            limits=Limits(),
        )
    except RequestError as error:
        return [f"{error.code}: {error.message}"]
    if record.relayable:
        assert list(record.reasons) == reserved_field_problems(sent)
        return []
    return list(record.reasons)


def _check(call: Any) -> None:
    client = Client("key", send=False)
    with capture() as events:
        try:
            call(client)
        except InvalidMessage as error:
            assert FIELD.match(str(error)), str(error)
            assert events == []
            return
    [message] = events
    assert _collector_verdict(message) == []


@PROPERTIES
@given(
    user_id=ids,
    event=st.text(min_size=1, max_size=12).filter(str.strip) | str_like | st.integers() | st.none(),
    properties=st.none() | st.dictionaries(keys, values, max_size=5),
    context=contexts,
    integrations=integrations,
    timestamp=timestamps,
)
def test_track_refuses_naming_a_field_or_sends_what_the_collector_accepts(
    user_id: Any, event: Any, properties: Any, context: Any, integrations: Any, timestamp: Any
) -> None:
    _check(
        lambda client: client.track(
            user_id,
            event,
            properties,
            context=context,
            timestamp=timestamp,
            integrations=integrations,
            anonymous_id="anon",
        )
    )


@PROPERTIES
@given(
    user_id=ids,
    traits=st.none() | st.dictionaries(keys | st.just("address"), values, max_size=5),
    group_id=ids,
    message_id=st.none() | ids,
)
def test_identify_and_group_refuse_naming_a_field_or_send_what_the_collector_accepts(
    user_id: Any, traits: Any, group_id: Any, message_id: Any
) -> None:
    _check(lambda client: client.identify(user_id, traits, message_id=message_id))
    _check(lambda client: client.group(user_id, group_id, traits, anonymous_id="a"))


@PROPERTIES
@given(
    name=st.none() | str_like | st.integers(),
    properties=st.none()
    | st.dictionaries(
        st.sampled_from(["url", "search", "title", "path", "referrer"]) | text,
        values | text.map(lambda t: "?" + t) | st.just("https://x.example/#frag"),
        max_size=4,
    ),
)
def test_page_refuses_naming_a_field_or_sends_what_the_collector_accepts(
    name: Any, properties: Any
) -> None:
    _check(lambda client: client.page("u1", None, name, properties))


@PROPERTIES
@given(change=st.dictionaries(st.sampled_from(["userId", "messageId", "event", "type"]), ids))
def test_before_send_results_are_held_to_the_same_rules(change: dict[str, Any]) -> None:
    def hook(message: dict[str, Any]) -> dict[str, Any]:
        return {**message, **change}

    client = Client("key", send=False, before_send=hook)
    with capture() as events:
        try:
            client.track("u1", "Viewed")
        except InvalidMessage as error:
            assert FIELD.match(str(error)), str(error)
            return
    [message] = events
    assert _collector_verdict(message) == []


def test_the_strategies_reach_both_outcomes() -> None:
    # A guard against a generator that only ever produces one kind of value.
    client = Client("key", send=False)
    with capture():
        client.track("u1", "ok", {"when": dt.datetime(2024, 1, 1), "n": decimal.Decimal("1.5")})
    try:
        client.track("u1", "bad", {"n": decimal.Decimal("NaN")})
    except InvalidMessage as error:
        assert FIELD.match(str(error))
    else:
        raise AssertionError("NaN was accepted")
