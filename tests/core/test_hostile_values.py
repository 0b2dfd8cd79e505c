"""Values a careless or hostile caller may pass: each is refused naming its field,
or sent as plain JSON the collector accepts."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import logging
import os
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils.functional import lazy
from django.utils.safestring import mark_safe

from segment_core import Client, InvalidMessage
from segment_core.collector import CollectorHandle
from segment_core.spec import MAX_NESTING_DEPTH
from segment_core.testing import capture
from tests.core.test_framework_values import NotATime, _untranslatable
from tests.receiver import Receiver


class Plan(enum.Enum):  # a str mixin whose str() is "Plan.PRO", not its value
    PRO = "pro"

    def __str__(self) -> str:
        return f"Plan.{self.name}"


class Color(str, enum.Enum):
    RED = "red"


class Shade(enum.Enum):
    RED = "red"


class StrPlan(str):
    pass


# A type named as an accepted one, as numpy's scalar numpy.bool is.
ForeignBool = type("bool", (), {"__repr__": lambda self: "True_"})


@pytest.fixture
def client() -> Client:
    return Client("key", send=False)


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "x"}
    loop["self"] = loop
    return loop


def _nested(levels: int) -> object:
    deep: object = "bottom"
    for _ in range(levels):
        deep = {"d": deep}
    return deep


# Each hostile value, and the path its InvalidMessage must name.
HOSTILE: dict[str, tuple[object, str]] = {
    "nan": (float("nan"), "message.properties.v"),
    "inf": (float("inf"), "message.properties.v"),
    "-inf": (float("-inf"), "message.properties.v"),
    "nested nan": ({"list": [1, float("nan")]}, "message.properties.v.list[1]"),
    "decimal nan": (decimal.Decimal("NaN"), "message.properties.v"),
    "decimal snan": (decimal.Decimal("sNaN"), "message.properties.v"),
    "decimal inf": (decimal.Decimal("Infinity"), "message.properties.v"),
    "decimal -inf": (decimal.Decimal("-Infinity"), "message.properties.v"),
    "circular": (_circular(), "message.properties.v.self"),
    "too deep": (_nested(MAX_NESTING_DEPTH), "message.properties.v"),
    "huge int": (10**5000, "message.properties.v"),
    "colliding keys": ({1: "a", "1": "b"}, "message.properties.v"),
    "colliding enum key": ({Shade.RED: 1, "red": 2}, "message.properties.v"),
    "bad key": ({(1, 2): "tuple key"}, "message.properties.v key (1, 2)"),
    "object": (object(), "message.properties.v"),
    "lone surrogate": ("x\ud800", "message.properties.v: the text holds a lone surrogate"),
    "lone surrogate in a key": ({"na\udc00me": 1}, "message.properties.v key 'na\\udc00me'"),
    "huge int key": ({10**5000: 1}, "message.properties.v key: the integer has"),
    "not a date": (NotATime(), "message.properties.v: NotATime NaT is not a date"),
    "not a date key": ({NotATime(): 1}, "message.properties.v key: NotATime NaT is not a date"),
    # Finite float and Decimal keys are written as text: these two are no number at all.
    "nan key": (
        {float("nan"): 1},
        "message.properties.v key nan: NaN and infinities cannot be keys",
    ),
    "decimal infinity key": (
        {decimal.Decimal("-Infinity"): 1},
        "message.properties.v key Decimal('-Infinity'): NaN and infinities cannot be keys",
    ),
    "a type named as an accepted one": (
        ForeignBool(),
        f"message.properties.v: a value of type {__name__}.bool cannot be encoded as JSON",
    ),
    "a key of a type named as an accepted one": (
        {ForeignBool(): 1},
        f"message.properties.v key True_: a key of type {__name__}.bool cannot be used",
    ),
    "failing lazy text": (
        lazy(_untranslatable, str)(),
        "message.properties.v: lazy text (__proxy__) whose str() failed",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_values_json_cannot_hold_are_refused_naming_the_field(client: Client, name: str) -> None:
    value, path = HOSTILE[name]
    with pytest.raises(InvalidMessage) as raised:
        client.track("u1", "Viewed", {"v": value})
    assert str(raised.value).startswith(path), str(raised.value)


def _errors_in_this_process() -> dict[str, str]:
    client = Client("key", send=False)
    errors = {}
    for name, (value, _path) in HOSTILE.items():
        try:
            client.track("u1", "Viewed", {"v": value})
        except InvalidMessage as error:
            errors[name] = str(error)
    return errors


#: The start of a script that runs without orjson: the standard library's encoder.
BLOCK_ORJSON = """
import sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "orjson":
            raise ModuleNotFoundError("No module named 'orjson'", name=name)
        return None

sys.meta_path.insert(0, _Refuse())
import segment_core.encoding
assert segment_core.encoding.orjson is None
"""

_WITHOUT_ORJSON = """
import json
import logging
from tests.core.test_hostile_values import _errors_in_this_process
print(json.dumps(_errors_in_this_process()))
"""


def test_the_stdlib_encoder_refuses_the_same_values_with_the_same_words() -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_ORJSON + _WITHOUT_ORJSON],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == _errors_in_this_process()
    assert len(_errors_in_this_process()) == len(HOSTILE)


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.track("u1", "Ev\ud800"), "message.event"),
        (lambda c: c.track("u\ud800", "E"), "message.userId"),
        (lambda c: c.track(None, "E", anonymous_id="a\udfff"), "message.anonymousId"),
        (lambda c: c.track("u1", "E", context={"foo": "\ud800"}), "message.context.foo"),
        (lambda c: c.identify("u1", {"email": "\ud800"}), "message.traits.email"),
        (lambda c: c.group("u1", "g\ud800"), "message.groupId"),
        (lambda c: c.page("u1", name="P\ud800"), "message.name"),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused_naming_the_field(
    client: Client, call: Any, path: str
) -> None:
    with pytest.raises(InvalidMessage, match=rf"^{re.escape(path)}: the text holds a lone"):
        call(client)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.track(10**5000, "E"), "user_id"),
        (lambda c: c.track(None, "E", anonymous_id=10**5000), "anonymous_id"),
        (lambda c: c.track("u", "E", message_id=10**5000), "message_id"),
        (lambda c: c.group("u", 10**5000), "group_id"),
        (lambda c: c.alias(10**5000, "u"), "previous_id"),
    ],
)
def test_an_id_too_long_to_write_is_refused_naming_the_field(
    client: Client, call: Any, field: str
) -> None:
    with pytest.raises(InvalidMessage, match=rf"^{field}: the integer has 16610 bits"):
        call(client)


def test_big_integers_keep_every_digit(client: Client) -> None:
    from segment_core.encoding import encode

    with capture() as events:
        client.track("u1", "Viewed", {"big": 2**70, "small": -(2**63)})
    assert json.loads(encode(events[0]))["properties"] == {"big": 2**70, "small": -(2**63)}


def test_non_str_keys_that_do_not_collide_are_written_as_text(client: Client) -> None:
    from segment_core.encoding import decode, encode

    with capture() as events:
        client.track("u1", "Viewed", {1: "one", None: "none", 2.5: "half", Shade.RED: "r"})
    assert decode(encode(events[0]))["properties"] == {
        "1": "one",
        "null": "none",
        "2.5": "half",
        "red": "r",
    }


def test_decimal_keys_are_written_as_their_values_are(client: Client) -> None:
    from segment_core.encoding import decode, encode

    keys = {decimal.Decimal("1.5"): "a", decimal.Decimal("2.00"): "b", decimal.Decimal("3"): "c"}
    with capture() as events:
        client.track("u1", "Viewed", {"by_key": keys, "as_values": list(keys)})
    sent = decode(encode(events[0]))["properties"]
    assert sent["by_key"] == {"1.5": "a", "2": "b", "3": "c"}
    assert sent["as_values"] == [1.5, 2, 3]
    with pytest.raises(InvalidMessage, match=r"^message\.properties\.v: the keys .* are both"):
        client.track("u1", "Viewed", {"v": {decimal.Decimal("1.5"): 1, "1.5": 2}})


@pytest.mark.parametrize(
    "text", [Color.RED, StrPlan("red"), mark_safe("red")], ids=["StrEnum", "subclass", "SafeString"]
)
def test_str_subclasses_are_accepted_and_sent_as_plain_str(
    text: str, segment_collector: CollectorHandle
) -> None:
    client = Client("key", host=segment_collector.url)
    try:
        client.track(text, text, {text: text}, anonymous_id=text, message_id=text + "-id")
        client.page(text, text, text, {"title": text})
        client.group(text, text, {text: [text]})
        client.alias(text, text + "-new")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    events = segment_collector.wait_for(4)
    assert [e["status"] for e in events] == ["good"] * 4, [e["reasons"] for e in events]
    track, page, group, alias = (e["message"] for e in events)
    assert (track["userId"], track["anonymousId"], track["event"]) == ("red", "red", "red")
    assert track["messageId"] == "red-id"
    assert track["properties"] == {"red": "red"}
    assert (page["name"], page["category"], page["properties"]["title"]) == ("red", "red", "red")
    assert (group["groupId"], group["traits"]) == ("red", {"red": ["red"]})
    assert alias["previousId"] == "red"


def test_a_captured_message_holds_plain_str(client: Client) -> None:
    with capture() as events:
        client.track(Color.RED, Color.RED)
    assert type(events[0]["userId"]) is str and events[0]["userId"] == "red"
    assert type(events[0]["event"]) is str and events[0]["event"] == "red"


def test_an_enum_id_is_sent_by_value_not_by_its_str(client: Client) -> None:
    with pytest.raises(InvalidMessage, match="user_id"):
        client.track(Plan.PRO, "Viewed")  # not a str, not an int: refused, not "Plan.PRO"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (dt.datetime(999, 1, 2, 3, 4, 5), "0999-01-02T03:04:05.000Z"),
        (dt.datetime(1, 1, 1), "0001-01-01T00:00:00.000Z"),
        ("0042-06-07T08:09:10Z", "0042-06-07T08:09:10.000Z"),
    ],
)
def test_early_years_keep_four_digits(client: Client, timestamp: object, expected: str) -> None:
    with capture() as events:
        client.track("u1", "Viewed", timestamp=timestamp)
    assert events[0]["timestamp"] == expected


@pytest.mark.parametrize(
    "timestamp",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_timestamps_outside_the_iso_years_are_refused(client: Client, timestamp: object) -> None:
    with pytest.raises(InvalidMessage, match=r"^timestamp"):
        client.track("u1", "Viewed", timestamp=timestamp)


# -- the Spec rules the collector applies, refused by the client as well ----------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.track("u1", "   "), "event"),
        (lambda c: c.track("u1", "\t\n"), "event"),
        (lambda c: c.track("u1", "E", integrations={"All": "yes"}), "integrations.All"),
        (lambda c: c.track("u1", "E", integrations={"Mixpanel": 1}), "integrations.Mixpanel"),
        (lambda c: c.track("u1", "E", context={"ip": "not-an-ip"}), "context.ip"),
        (lambda c: c.track("u1", "E", context={"active": "yes"}), "context.active"),
        (lambda c: c.group("u1", "acme", context={"groupId": True}), "context.groupId"),
        (lambda c: c.track("u1", "E", context={"groupId": 1.5}), "context.groupId"),
        (lambda c: c.track("u1", "E", context={"library": "x"}), "context.library"),
        (lambda c: c.track("u1", "E", context={"page": {"url": 5}}), "context.page.url"),
        (
            lambda c: c.track(
                "u1", "E", context={"consent": {"categoryPreferences": {"Ads": "no"}}}
            ),
            "context.consent.categoryPreferences.Ads",
        ),
        (lambda c: c.page("u1", properties={"search": "q=1"}), "properties.search"),
        (lambda c: c.page("u1", properties={"url": "https://x/#top"}), "properties.url"),
        (lambda c: c.page("u1", properties={"title": 5}), "properties.title"),
    ],
)
def test_what_the_collector_marks_bad_the_client_refuses(
    client: Client, call: Any, field: str
) -> None:
    with pytest.raises(InvalidMessage, match=rf"^{field.replace('.', '[.]')}"):
        call(client)


def test_an_integer_context_group_id_goes_out_as_text_as_every_id(
    make_client: Callable[..., Client], receiver: Receiver
) -> None:
    client = make_client()
    assert client.track("u1", "E", context={"groupId": 12345678901234567890})[0]
    assert client.flush(5)
    [message] = receiver.wait_for_messages(1)
    assert message["context"]["groupId"] == "12345678901234567890"


def test_a_context_group_id_of_the_defaults_or_of_before_send_is_text_as_a_calls() -> None:
    team = uuid.UUID(int=7)
    in_defaults = Client("key", send=False, default_context={"groupId": team})

    def moves_to_a_team(message: dict[str, Any]) -> dict[str, Any]:
        return {**message, "context": {**message["context"], "groupId": team}}

    by_its_hook = Client("key", send=False, before_send=moves_to_a_team)
    with capture() as sent:
        assert in_defaults.track("u1", "E")[0]
        assert by_its_hook.track("u1", "E")[0]
    assert [message["context"]["groupId"] for message in sent] == [str(team)] * 2
    with pytest.raises(ValueError, match=r"^default_context: context[.]groupId .* got float"):
        Client("key", send=False, default_context={"groupId": 1.5})
    by_a_wrong_hook = Client(
        "key", send=False, before_send=lambda m: {**m, "context": {"groupId": b"7"}}
    )
    with capture() as sent:
        assert by_a_wrong_hook.track("u1", "E")[0]  # the hook's failure, not the caller's
    assert "groupId" not in sent[0]["context"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"default_integrations": {"All": "no"}}, "default_integrations: integrations.All"),
        ({"default_context": {"ip": "nope"}}, "default_context: context.ip"),
        ({"default_context": {"n": float("inf")}}, "default_context.n: inf"),
        ({"default_context": {1: "a", "1": "b"}}, "default_context: the keys"),
        ({"default_context": {"app": {"name": "caf\udce9"}}}, "default_context.app.name: "),
        (
            {"default_context": {"notes": "x" * 32_600}},
            "default_context is 32,612 bytes encoded: with it no call fits in the 32,768 bytes",
        ),
        (
            {"default_integrations": {f"Tool {n}": True for n in range(3_000)}},
            "default_integrations is 49,891 bytes encoded",
        ),
    ],
)
def test_defaults_are_checked_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Client("key", send=False, **options)


# -- what before_send returns ------------------------------------------------------


@pytest.mark.parametrize(
    ("hook", "field"),
    [
        (lambda m: {**m, "userId": None}, "userId or anonymousId"),
        (lambda m: {**m, "userId": 1.5}, "before_send: userId"),
        (lambda m: {**m, "messageId": "x" * 101}, "before_send: messageId"),
        (lambda m: {**m, "messageId": ""}, "before_send: messageId"),
        (lambda m: {**m, "event": " "}, "event"),
        (lambda m: {**m, "timestamp": "yesterday"}, "before_send: timestamp"),
        (lambda m: {**m, "properties": {"v": float("nan")}}, "message.properties.v"),
        (lambda m: {**m, "properties": {"pad": "x" * 40_000}}, "message is"),
        (lambda m: {k: v for k, v in m.items() if k != "type"}, "type"),
    ],
)
def test_what_before_send_returns_is_checked_like_a_callers_message(
    hook: Any, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A message the hook broke is its failure, not the caller's: logged naming the
    field, and the caller's message goes as it was (as when the hook raises)."""
    client = Client("key", send=False, before_send=hook)
    with capture() as sent:
        accepted, message = client.track("u1", "Viewed", {"plan": "pro"})
    assert accepted
    [as_sent] = sent
    assert as_sent["messageId"] == message["messageId"]
    assert (as_sent["type"], as_sent["userId"], as_sent["properties"]) == (
        "track",
        "u1",
        {"plan": "pro"},
    )
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("before_send")
    assert error.getMessage().endswith("; sending the message unchanged")
    assert re.search(field.replace(".", "[.]"), error.getMessage())


def test_before_send_may_change_a_message_within_the_rules() -> None:
    client = Client("key", send=False, before_send=lambda m: {**m, "userId": 42})
    with capture() as events:
        client.track("u1", "Viewed")
    assert events[0]["userId"] == "42"


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-01-01T12:00:00",
        "2024-01-01T12:00:00+02:00",
        "2024-01-01 12:00:00+00:00",
        dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2024, 1, 1, 12),
    ],
    ids=["no zone", "offset", "space", "datetime with offset", "naive datetime"],
)
def test_a_timestamp_from_before_send_is_written_as_a_callers(timestamp: object) -> None:
    from_hook = Client("key", send=False, before_send=lambda m: {**m, "timestamp": timestamp})
    with capture() as events:
        Client("key", send=False).track("u1", "Viewed", timestamp=timestamp)
        from_hook.track("u1", "Viewed")
    assert events[1]["timestamp"] == events[0]["timestamp"]
    assert events[0]["timestamp"].endswith("Z")


@pytest.mark.parametrize("timestamp", ["yesterday", 1704110400, "2024-13-01T00:00:00Z"])
def test_a_bad_timestamp_from_before_send_fails_as_a_callers(
    timestamp: object, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidMessage) as refused:
        Client("key", send=False).track("u1", "Viewed", timestamp=timestamp)
    from_hook = Client("key", send=False, before_send=lambda m: {**m, "timestamp": timestamp})
    with capture() as sent:
        assert from_hook.track("u1", "Viewed")[0]
    assert sent[0]["timestamp"] != timestamp
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == f"before_send: {refused.value}; sending the message unchanged"


def test_a_hook_changing_the_message_in_place_is_checked_too() -> None:
    def hook(message: dict[str, Any]) -> dict[str, Any]:
        message["integrations"] = {"All": "yes"}
        return message

    with capture() as sent:
        assert Client("key", send=False, before_send=hook).track("u1", "Viewed")[0]
    assert "All" not in sent[0].get("integrations", {})


def test_the_client_and_the_collector_share_one_nesting_limit(
    segment_collector: CollectorHandle,
) -> None:
    # The message is level 1 and its properties level 2: the rest is the nesting.
    deepest_allowed = _nested(MAX_NESTING_DEPTH - 2)
    client = Client("key", host=segment_collector.url)
    try:
        client.track("u1", "Deep", {"v": deepest_allowed})
        with pytest.raises(InvalidMessage, match=r"^message\.properties\.v(\.d)+: nested"):
            client.track("u1", "Too Deep", {"v": {"d": deepest_allowed}})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    [event] = segment_collector.wait_for(1)
    assert event["status"] == "good"
    assert event["message"]["properties"]["v"] == deepest_allowed
    assert segment_collector.events(last=1)[0]["seq"] == event["seq"]  # served back


_LEAVES: list[object] = [
    "x",
    "\ud800",
    "\u00e9\x00",
    0,
    -(2**63),
    2**64,
    2**70,
    10**5000,
    1.5,
    -0.0,
    float("nan"),
    float("-inf"),
    True,
    None,
    decimal.Decimal("1.5"),
    decimal.Decimal("NaN"),
    dt.datetime(2020, 1, 1),
    Shade.RED,
    Color.RED,
    StrPlan("s"),
    (1, 2),
    {"s"},
    {1: "a"},
    {1: "a", "1": "b"},
]


def _random_value(rng: random.Random, depth: int) -> object:
    roll = rng.random()
    if depth < 4 and roll < 0.2:
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 3))}
    if depth < 4 and roll < 0.3:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice(_LEAVES)


def _outcome(encoder: Any, *args: Any, **kwargs: Any) -> object:
    try:
        return encoder(*args, **kwargs)
    except InvalidMessage as error:
        return str(error)


def test_the_shortcuts_encode_exactly_as_the_checked_path() -> None:
    # Flat properties skip the encoder's scans, nested ones are walked alone for
    # NaN: the bytes, or the error, must be those of encode() on the whole message.
    from segment_core.encoding import encode, encode_simple
    from segment_core.normalize import WHOLE_MESSAGE, CheckedContext, MessageFactory

    factory, rng = MessageFactory(), random.Random(20261201)
    paths = set()
    for _ in range(3000):
        properties = {f"p{i}": _random_value(rng, 1) for i in range(rng.randint(0, 4))}
        context = rng.choice([None, CheckedContext({"ip": "203.0.113.7", "page": {"path": "/"}})])
        message = factory.track("u1", "Viewed", properties, context)
        unchecked = factory.unchecked(context, None, message.get("properties"))
        if unchecked is None:
            shortcut = _outcome(encode_simple, message)
        else:
            assert unchecked is not WHOLE_MESSAGE
            shortcut = _outcome(encode, message, numbers=unchecked)
        assert shortcut == _outcome(encode, message), properties
        paths.add((unchecked is None, isinstance(shortcut, bytes)))
    assert paths == {(True, True), (True, False), (False, True), (False, False)}


def test_a_long_key_on_the_path_of_a_refused_value_is_cut_in_the_error() -> None:
    # A dict keyed by URLs or search texts: the error stays short whatever the keys.
    client = Client("k", send=False)
    key = "k" * 40_000
    for properties in ({key: object()}, {key: "x"}, {"a": {key: {"b": object()}}}):
        with pytest.raises(InvalidMessage) as refused:
            client.track("u1", "Searched", properties)
        assert len(str(refused.value)) < 400, str(refused.value)[:200]
        assert "…(40000 characters)" in str(refused.value)


def test_a_long_integration_or_consent_name_is_cut_in_the_error() -> None:
    client = Client("k", send=False)
    key = "k" * 30_000
    for options in (
        {"integrations": {key: "yes"}},
        {"context": {"consent": {"categoryPreferences": {key: "yes"}}}},
    ):
        with pytest.raises(InvalidMessage) as refused:
            client.track("u1", "Searched", **options)
        assert len(str(refused.value)) < 400, str(refused.value)[:200]
        assert "…(30000 characters)" in str(refused.value)


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize("name", [_BadRepr(), b"x" * 1_000_000, list(range(100_000))])
def test_a_bad_integration_name_is_refused_briefly(name: object) -> None:
    from segment_core import Integrations

    for call in (
        lambda: Integrations().enable(name),  # type: ignore[arg-type]
        lambda: Integrations().disable(name),  # type: ignore[arg-type]
        lambda: Integrations().set(name, {"a": 1}),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidMessage, match="an integration's name must be") as refused:
            call()
        assert len(str(refused.value)) < 200


@pytest.mark.parametrize(
    "options",
    [{"context": {"active": ForeignBool()}}, {"integrations": {"All": ForeignBool()}}],
    ids=["context.active", "integrations.All"],
)
def test_a_refused_type_named_as_an_accepted_one_reads_by_its_module(
    client: Client, options: dict[str, Any]
) -> None:
    with pytest.raises(InvalidMessage, match=r"got tests\.core\.test_hostile_values\.bool"):
        client.track("u1", "Searched", **options)


@pytest.mark.parametrize(
    "offset", [dt.timedelta(seconds=-30), dt.timedelta(microseconds=5)], ids=["30 s", "5 µs"]
)
def test_a_time_whose_offset_has_seconds_is_refused_as_a_value_and_as_a_key(
    offset: dt.timedelta,
) -> None:
    # A time has no date to move it to UTC with, and ISO-8601 writes offsets in minutes.
    client = Client("k", send=False)
    at = dt.time(1, 2, 3, tzinfo=dt.timezone(offset))
    for properties, where in (({"t": at}, "message.properties.t"), ({at: 1}, "message.properties")):
        with pytest.raises(InvalidMessage, match=rf"^{re.escape(where)}.*has seconds"):
            client.track("u1", "Booked", properties)
    minutes = dt.time(1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30)))
    with capture() as sent:
        assert client.track("u1", "Booked", {"t": minutes})[0]
    assert sent[0]["properties"]["t"] == "01:02:03-05:30"
