from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import numbers
import os
import random
import re
import time
import types
import uuid
from typing import Any
from unittest import mock

import pytest

from segment_core import (
    Alias,
    Client,
    Context,
    Group,
    Identify,
    Integrations,
    InvalidMessage,
    Page,
    Properties,
    Screen,
    Track,
    Traits,
)
from segment_core.spec import parse_iso8601
from segment_core.testing import capture


@pytest.fixture
def client() -> Client:
    return Client("key", send=False)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.track(event="E"), "user_id or anonymous_id is required for track"),
        (lambda c: c.track("u"), "event must be a non-empty string"),
        (lambda c: c.track("u", 42), "event must be a non-empty string"),
        (lambda c: c.track("u", "E", [1]), "properties must be a dict, got list"),
        (lambda c: c.identify("u", "traits"), "traits must be a dict, got str"),
        (lambda c: c.track("u", "E", context=1), "context must be a dict, got int"),
        (lambda c: c.track("u", "E", integrations=["All"]), "integrations must be a dict"),
        (lambda c: c.group("u"), "group_id is required for group"),
        (lambda c: c.alias(user_id="u"), "previous_id is required for alias"),
        (lambda c: c.alias("p"), "user_id is required for alias"),
        (lambda c: c.page("u", name=3), "name must be a string, got int"),
        (lambda c: c.screen("u", category=[]), "category must be a string, got list"),
        (lambda c: c.track("u", "E", timestamp="yesterday"), "timestamp must be an ISO-8601"),
        (lambda c: c.track("u", "E", timestamp=12.5), "timestamp must be a datetime"),
        (lambda c: c.track("u", "E", message_id="x" * 101), "at most 100 characters, got 101"),
        (lambda c: c.track(1.5, "E"), "user_id must be a string or an integer, got float"),
        (lambda c: c.track(True, "E"), "user_id must be a string or an integer, got bool"),
    ],
)
def test_programmer_errors_raise_at_the_call_site(call: Any, message: str, client: Client) -> None:
    with pytest.raises(InvalidMessage, match=message):
        call(client)


def test_invalid_message_is_a_value_error() -> None:
    assert issubclass(InvalidMessage, ValueError)


def test_a_value_that_cannot_be_encoded_names_its_type_and_place(client: Client) -> None:
    with pytest.raises(InvalidMessage, match=r"message\.properties\.cart\[1\]: .* type object"):
        client.track("u", "E", {"cart": [1, object()]})
    with pytest.raises(InvalidMessage, match=r"message\.traits\.avatar: bytes that are not UTF-8"):
        client.identify("u", {"avatar": b"\x89PNG"})


def test_a_message_over_32_kb_is_refused(client: Client) -> None:
    with pytest.raises(InvalidMessage, match=r"at most 32768 bytes"):
        client.track("u", "E", {"blob": "x" * 33_000})
    # The field to look at is named.
    with pytest.raises(
        InvalidMessage, match=r"largest part: properties\.order\.notes, 330\d\d bytes"
    ):
        client.track("u", "E", {"order": {"id": 7, "notes": "x" * 33_000}, "n": 1})
    with pytest.raises(InvalidMessage, match=r"largest part: context\.page\.url"):
        client.track("u", "E", context={"page": {"url": "https://a.example/?" + "q" * 33_000}})
    # Weighed with their keys; an object of many small parts is named itself.
    with pytest.raises(
        InvalidMessage, match=r"largest part: properties\.k{40}…\(34000 characters\), "
    ):
        client.track("u", "E", {"k" * 34_000: 1, "small": "x" * 100})
    with pytest.raises(InvalidMessage, match=r"largest part: properties, 5\d{4} bytes"):
        client.track("u", "E", {f"key{i}": i for i in range(4000)})
    ok, _ = client.track("u", "E", {"blob": "x" * 30_000})
    assert ok


def test_a_context_without_a_library_gets_the_library_s(client: Client) -> None:
    for context in ({"library": None}, {"library": None, "ip": "203.0.113.7"}, {}):
        library = client.track("u", "E", context=context)[1]["context"]["library"]
        assert library["name"] == "segment-web"


def test_normalisation_of_ids_timestamps_and_library(client: Client) -> None:
    big = 2**80 + 1
    ok, message = client.track(big, "E", anonymous_id=uuid.UUID(int=5), message_id=17)
    assert ok
    assert message["userId"] == str(big)
    assert message["anonymousId"] == "00000000-0000-0000-0000-000000000005"
    assert message["messageId"] == "17"
    assert message["context"]["library"]["name"] == "segment-web"
    naive = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
    assert client.track("u", "E", timestamp=naive)[1]["timestamp"] == "2024-05-06T07:08:09.123Z"
    aware = dt.datetime(2024, 5, 6, 9, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert client.track("u", "E", timestamp=aware)[1]["timestamp"] == "2024-05-06T07:08:09.000Z"
    text = client.track("u", "E", timestamp="2024-05-06T07:08:09Z")[1]["timestamp"]
    assert text == "2024-05-06T07:08:09.000Z"


@pytest.mark.usefixtures("clock_west_of_utc")
def test_a_naive_timestamp_of_datetime_now_is_local_time_as_analytics_python_reads_it(
    client: Client,
) -> None:
    def sent(timestamp: dt.datetime) -> str:
        return str(client.track("u", "E", timestamp=timestamp)[1]["timestamp"])

    def in_utc(aware: dt.datetime) -> str:
        return sent(aware.astimezone(dt.timezone.utc))

    now = dt.datetime.now()
    assert sent(now) == in_utc(now.astimezone())  # five hours later than the same clock time in UTC
    assert sent(now) != sent(now.replace(tzinfo=dt.timezone.utc))
    # utcnow() is hours away from the local now: UTC, as any other naive timestamp.
    utc_now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert sent(utc_now) == in_utc(utc_now.replace(tzinfo=dt.timezone.utc))
    assert sent(dt.datetime(2024, 5, 6, 7, 8, 9)) == "2024-05-06T07:08:09.000Z"
    # The same in ISO-8601 text without an offset.
    assert client.track("u", "E", timestamp=now.isoformat())[1]["timestamp"] == sent(now)
    assert client.track("u", "E", timestamp=utc_now.isoformat())[1]["timestamp"] == sent(utc_now)
    stored = client.track("u", "E", timestamp="2024-05-06T07:08:09")[1]["timestamp"]
    assert stored == "2024-05-06T07:08:09.000Z"
    with capture() as captured:
        client.track("u", "Local", timestamp=now)
        client.flush()
    assert captured.find("track", event="Local", timestamp=now)


@pytest.mark.usefixtures("clock_west_of_utc")
def test_a_capture_finds_a_naive_timestamp_of_now_however_long_after(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now()
    with capture() as captured:
        client.track("u", "Local", timestamp=now)
        client.track("u", "Local text", timestamp=now.isoformat())
        client.flush()
    monkeypatch.setattr("segment_core.normalize._NOW_WINDOW", dt.timedelta(0))  # long after
    assert captured.find("track", event="Local", timestamp=now)
    assert not captured.find("track", event="Local", timestamp=now - dt.timedelta(seconds=1))
    # Its ISO-8601 text without an offset, either way round.
    assert captured.find("track", event="Local", timestamp=now.isoformat())
    assert captured.find("track", event="Local text", timestamp=now.isoformat())
    assert captured.find("track", event="Local text", timestamp=now)


@pytest.mark.usefixtures("clock_east_of_utc")
def test_a_capture_reads_a_naive_timestamp_far_from_now_as_utc_alone(client: Client) -> None:
    stored = dt.datetime(2020, 1, 1, 12, 0)  # sent as UTC: no now of the call's
    with capture() as captured:
        client.track("u", "Stored", timestamp=stored)
        client.track(
            "u", "Other", timestamp=stored.replace(tzinfo=dt.timezone(dt.timedelta(hours=9)))
        )
        client.flush()
    assert [m["event"] for m in captured.find("track", timestamp=stored)] == ["Stored"]


class _OwnAstimezone(dt.datetime):
    """A datetime whose astimezone is its own (pandas' Timestamp makes it tz_convert)."""

    def astimezone(self, tz: dt.tzinfo | None = None) -> dt.datetime:
        raise TypeError("tz_convert() takes exactly 2 positional arguments")


@pytest.mark.usefixtures("clock_west_of_utc")
def test_a_naive_timestamp_of_now_of_a_datetime_subclass_is_local_time(client: Client) -> None:
    now = _OwnAstimezone.now()
    aware = dt.datetime.astimezone(now)
    with capture() as captured:
        sent = client.track("u", "E", timestamp=now)[1]["timestamp"]
        client.flush()
    assert sent == client.track("u", "E", timestamp=aware)[1]["timestamp"]
    assert captured.find("track", timestamp=now)


@pytest.mark.usefixtures("clock_west_of_utc")
def test_a_naive_timestamp_of_now_is_local_time_whatever_time_time_says(client: Client) -> None:
    # A test that ages a cache or a token mocks time.time alone.
    now = dt.datetime.now()
    with mock.patch("time.time", return_value=time.time() - 30 * 3600):
        sent = client.track("u", "E", timestamp=now)[1]["timestamp"]
    assert sent == client.track("u", "E", timestamp=now.astimezone())[1]["timestamp"]


class Int64:
    """An integer type of its own, as numpy's: an ``Integral`` but not an ``int``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


numbers.Integral.register(Int64)


def test_ids_of_any_integer_type_are_their_digits(client: Client) -> None:
    ok, message = client.identify(Int64(42), {"plan": "pro"}, message_id=Int64(7))
    assert ok and (message["userId"], message["messageId"]) == ("42", "7")
    with pytest.raises(InvalidMessage, match="user_id must be a string or an integer"):
        client.identify(1.5)


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.123Z"),  # Go, Java
        ("2024-01-02T03:04:05.1Z", "2024-01-02T03:04:05.100Z"),
        ("2024-01-02T05:04:05+0200", "2024-01-02T03:04:05.000Z"),
        ("2024-01-02T03:04:05.12345+00:00", "2024-01-02T03:04:05.123Z"),
    ],
)
def test_iso_8601_timestamps_as_other_services_write_them(
    client: Client, text: str, sent: str
) -> None:
    # The same on every supported Python: 3.10's fromisoformat takes none of these.
    assert client.track("u", "E", timestamp=text)[1]["timestamp"] == sent
    assert parse_iso8601(text) is not None


def test_generated_timestamps_and_message_ids(client: Client) -> None:
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    ids = set()
    for _ in range(200):
        message = client.track("u", "E")[1]
        ids.add(message["messageId"])
        assert uuid.UUID(message["messageId"]).version == 4
    stamp = dt.datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
    assert before <= stamp <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    assert len(ids) == 200


def test_an_app_seeding_the_random_module_repeats_no_message_id(client: Client) -> None:
    # Segment drops a message whose id it has seen: an app that seeds the random
    # module the same way each run (a job, a simulation) must not lose its events.
    ids = []
    state = random.getstate()
    try:
        for _ in range(2):
            random.seed(1234)
            ids.append(client.track("u", "E")[1]["messageId"])
    finally:
        random.setstate(state)
    assert ids[0] != ids[1]


def test_a_forked_child_makes_ids_of_its_own(client: Client) -> None:
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.write(writing, client.track("u", "E")[1]["messageId"].encode())
        finally:
            os._exit(0)
    os.close(writing)
    parent_id = client.track("u", "E")[1]["messageId"]
    with os.fdopen(reading, "rb") as pipe:
        child_id = pipe.read().decode()
    os.waitpid(child, 0)
    assert uuid.UUID(child_id) and child_id != parent_id


def test_defaults_are_merged_under_the_calls_own_values() -> None:
    client = Client(
        "key",
        send=False,
        default_context={"app": {"name": "shop", "version": "1"}, "locale": "en-US"},
        default_integrations={"All": True, "Mixpanel": False},
    )
    message = client.track(
        "u",
        "E",
        context={"app": {"version": "2"}, "ip": "1.2.3.4"},
        integrations={"Mixpanel": True},
    )[1]
    assert message["context"]["app"] == {"name": "shop", "version": "2"}
    assert message["context"]["locale"] == "en-US"
    assert message["context"]["ip"] == "1.2.3.4"
    assert message["integrations"] == {"All": True, "Mixpanel": True}


def test_the_callers_dicts_are_not_changed(client: Client) -> None:
    properties = {"a": 1}
    context: dict[str, Any] = {"ip": "1.2.3.4"}
    client.track("u", "E", properties, context)
    assert properties == {"a": 1}
    assert context == {"ip": "1.2.3.4"}


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Item:
    sku: str
    price: decimal.Decimal


def test_rich_values_are_encoded_sensibly() -> None:
    with capture() as events:
        client = Client("key", host="http://127.0.0.1:9")
        client.track(
            "u",
            "E",
            {
                "when": dt.datetime(2024, 1, 2, 3, 4, 5),
                "day": dt.date(2024, 1, 2),
                "price": decimal.Decimal("9.99"),
                "count": decimal.Decimal("3"),
                "id": uuid.UUID(int=1),
                "color": Color.RED,
                "tags": {"x"},
                "pair": (1, 2),
                "item": Item("A", decimal.Decimal("1.5")),
                "huge": 2**70,
                7: "int key",
            },
        )
    from segment_core.encoding import decode, encode

    decoded = decode(encode(events[0]))["properties"]
    assert decoded["when"] == "2024-01-02T03:04:05"  # the orjson and stdlib encoders agree
    assert decoded["day"] == "2024-01-02"
    assert decoded["price"] == 9.99
    assert decoded["count"] == 3
    assert decoded["id"] == "00000000-0000-0000-0000-000000000001"
    assert decoded["color"] == "red"
    assert decoded["tags"] == ["x"]
    assert decoded["pair"] == [1, 2]
    assert decoded["item"] == {"sku": "A", "price": 1.5}
    assert decoded["huge"] == 2**70
    assert decoded["7"] == "int key"


def test_typed_messages_encode_like_the_calls() -> None:
    with capture() as events:
        client = Client("key", host="http://127.0.0.1:9")
        client.enqueue(Track(user_id="u", event="Bought", properties=Properties().set_revenue(5)))
        client.enqueue(Identify(user_id="u", traits=Traits().set_email("a@b.c")))
        client.enqueue(Page(anonymous_id="a", name="Home", category="Docs"))
        client.enqueue(Screen(user_id="u", name="Settings"))
        client.enqueue(Group(user_id="u", group_id=9, traits={"plan": "pro"}))
        client.enqueue(Alias(user_id="u", previous_id="a"))
        client.enqueue(
            Track(
                user_id="u",
                event="Ctx",
                context=Context(ip="1.2.3.4", user_agent="ua", extra={"custom": 1}),
            )
        )
    assert [e["type"] for e in events] == [
        "track",
        "identify",
        "page",
        "screen",
        "group",
        "alias",
        "track",
    ]
    assert events[0]["properties"] == {"revenue": 5}
    assert events[1]["traits"] == {"email": "a@b.c"}
    assert (events[2]["name"], events[2]["category"]) == ("Home", "Docs")
    assert events[4]["groupId"] == "9"
    assert (events[5]["previousId"], events[5]["userId"]) == ("a", "u")
    context = events[6]["context"]
    assert (context["ip"], context["userAgent"], context["custom"]) == ("1.2.3.4", "ua", 1)


def test_enqueue_refuses_what_is_not_a_message(client: Client) -> None:
    with pytest.raises(InvalidMessage, match=r"must be a Track, .* got dict"):
        client.enqueue({"type": "track"})  # type: ignore[arg-type]


def test_builders_chain_and_use_the_spec_names() -> None:
    traits = (
        Traits()
        .set_name("Michael Bolton")
        .set_email("mb@example.com")
        .set_first_name("Michael")
        .set_created_at("2024-01-01T00:00:00Z")
        .set("plan", "pro")
    )
    assert traits == {
        "name": "Michael Bolton",
        "email": "mb@example.com",
        "firstName": "Michael",
        "createdAt": "2024-01-01T00:00:00Z",
        "plan": "pro",
    }
    props = Properties().set_revenue(10).set_url("https://x.test/").set_order_id("o1")
    assert props == {"revenue": 10, "url": "https://x.test/", "order_id": "o1"}
    assert isinstance(props, dict)


def test_integrations_name_the_destinations_a_call_goes_to() -> None:
    flags = Integrations().disable_all().enable("Mixpanel").disable("Salesforce")
    assert flags == {"All": False, "Mixpanel": True, "Salesforce": False}
    assert Integrations().set(key="Mixpanel", value=True) == {"Mixpanel": True}
    assert Integrations().enable_all().set("Amplitude", {"session_id": 7}) == {
        "All": True,
        "Amplitude": {"session_id": 7},
    }
    with capture() as sent:
        client = Client("k")
        client.track("u", "Signed Up", integrations=flags)
        client.enqueue(Track(user_id="u", event="E", integrations=flags.copy().enable("All")))
        client.flush()
    assert [m["integrations"] for m in sent] == [flags, {**flags, "All": True}]
    for name in ("", None, 7):
        with pytest.raises(InvalidMessage, match="an integration's name must be a non-empty"):
            Integrations().enable(name)  # type: ignore[arg-type]
        with pytest.raises(InvalidMessage, match="an integration's name must be a non-empty"):
            Integrations().set(name, True)  # type: ignore[arg-type]
    for value in ("yes", 1, None, ["a"]):
        with pytest.raises(InvalidMessage, match=r"integrations.Mixpanel: a destination takes"):
            Integrations().set("Mixpanel", value)
    frozen = types.MappingProxyType({"session_id": 7})
    assert Integrations().set("Amplitude", frozen) == {"Amplitude": {"session_id": 7}}
    with capture() as sent:
        Client("k").track("u", "E", integrations=Integrations().set("Amplitude", frozen))
    assert sent[0]["integrations"] == {"Amplitude": {"session_id": 7}}


def test_a_copy_or_a_merge_of_a_builder_chains_on() -> None:
    base = Properties().set_currency("EUR")
    copied = base.copy().set_revenue(10)
    merged = (base | {"coupon": "X"}).set_revenue(20)
    merged_into = ({"coupon": "Y", "currency": "USD"} | base).set_revenue(30)
    assert type(copied) is type(merged) is type(merged_into) is Properties
    assert copied == {"currency": "EUR", "revenue": 10}
    assert merged == {"currency": "EUR", "coupon": "X", "revenue": 20}
    assert merged_into == {"coupon": "Y", "currency": "EUR", "revenue": 30}
    assert base == {"currency": "EUR"}  # each one a copy of its own
    traits = Traits().set_plan("pro")
    assert type(traits.copy().set_email("a@b.c")) is Traits
    before = traits
    traits |= {"age": 40}
    assert traits is before and traits.set_name("Ada") == {"plan": "pro", "age": 40, "name": "Ada"}
    assert base.__or__(["not", "a", "dict"]) is NotImplemented


def test_builders_take_dataclasses_as_gos_take_structs() -> None:
    @dataclasses.dataclass
    class Product:
        product_id: str
        price: float

    @dataclasses.dataclass
    class Address:
        city: str

    props = Properties().set_products([Product("p1", 9.5)])
    assert props == {"products": [{"product_id": "p1", "price": 9.5}]}
    assert Traits().set_address(Address("Oslo")) == {"address": {"city": "Oslo"}}
    with pytest.raises(InvalidMessage, match=r"properties\.products\[0\] must be a dict"):
        Properties().set_products([Product])  # the class, not an instance


def test_builders_leave_unset_dataclass_fields_out_and_name_the_rest_as_the_spec() -> None:
    """None fields would clear the traits downstream; the Spec's address is camelCase,
    its company and e-commerce products snake_case."""

    @dataclasses.dataclass
    class Address:
        city: str | None = None
        postal_code: str | None = None
        street: str | None = None

    @dataclasses.dataclass
    class Company:
        name: str | None = None
        employee_count: int | None = None
        plan: str | None = None

    @dataclasses.dataclass
    class Product:
        product_id: str
        image_url: str | None = None
        price: float | None = None

    traits = Traits().set_address(Address("Oslo", postal_code="0150"))
    assert traits.set_company(Company("Acme", employee_count=0)) == {
        "address": {"city": "Oslo", "postalCode": "0150"},
        "company": {"name": "Acme", "employee_count": 0},
    }
    products = Properties().set_products([Product("p1", price=9.5), Product("p2")])
    assert products == {"products": [{"product_id": "p1", "price": 9.5}, {"product_id": "p2"}]}


def test_typed_messages_take_their_fields_by_name_only() -> None:
    # Positional arguments would land in the dataclass's own field order
    # (user_id, anonymous_id, ...): Page("u", "Home") sent "Home" as anonymousId.
    with pytest.raises(TypeError):
        Page("user-1", "Home")  # type: ignore[misc]
    assert Page(user_id="user-1", name="Home").name == "Home"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Properties().set_keywords("shoes"), "properties.keywords"),
        (lambda: Properties().set_keywords(["shoes", 2]), "properties.keywords[1]"),
        (lambda: Properties().set_products({"id": 1}), "properties.products"),
        (lambda: Properties().set_products([1]), "properties.products[0]"),
        (lambda: Traits().set_address("1 Main St"), "traits.address"),
        (lambda: Traits().set_company(None), "traits.company"),  # type: ignore[arg-type]
    ],
)
def test_builders_refuse_values_of_the_wrong_shape_by_name(build: Any, field: str) -> None:
    with pytest.raises(InvalidMessage, match=rf"^{re.escape(field)} must be"):
        build()


def test_before_send_works_on_a_copy_of_a_typed_message() -> None:
    def redact(message: dict[str, Any]) -> dict[str, Any]:
        message["properties"].pop("email")
        message["properties"]["redacted"] = True
        return message

    properties = {"plan": "pro", "email": "a@b.example"}
    message = Track(user_id="u", event="Upgraded", properties=properties)
    client = Client("key", send=False, before_send=redact)
    with capture() as events:
        client.enqueue(message)
        client.enqueue(message)  # built once, sent twice: the hook sees it as built
    assert [e["properties"] for e in events] == [{"plan": "pro", "redacted": True}] * 2
    assert properties == {"plan": "pro", "email": "a@b.example"}


def test_enqueue_says_what_is_wrong_with_what_it_got(client: Client) -> None:
    with pytest.raises(InvalidMessage, match=r"got the class Track \(an instance: Track\(...\)\)"):
        client.enqueue(Track)  # type: ignore[arg-type]
    with pytest.raises(InvalidMessage, match=r"^context\.extra must be a dict, got NoneType"):
        client.enqueue(Track(user_id="u", event="E", context=Context(extra=None)))  # type: ignore[arg-type]
