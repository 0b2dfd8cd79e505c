"""Lazy proxies (Werkzeug's ``LocalProxy``, Django's ``SimpleLazyObject``) pass
``isinstance()`` as what they stand for: sent as that value wherever a value, a key,
an id or a name goes, or refused naming the field when they cannot be read. And a
value whose own code raises, however deep, is refused naming its field."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from django.utils.functional import SimpleLazyObject
from werkzeug.local import LocalProxy

from segment_core import Client, InvalidMessage
from segment_core.collector import CollectorHandle
from segment_core.messages import Track

Proxy = Callable[[Callable[[], Any]], Any]
PROXIES: list[Proxy] = [SimpleLazyObject, LocalProxy]


@pytest.fixture
def client(collector_clients: Callable[..., Client]) -> Client:
    return collector_clients(sync_mode=True)


@pytest.mark.parametrize("proxy", PROXIES, ids=["SimpleLazyObject", "LocalProxy"])
def test_a_proxied_value_is_sent_as_what_it_stands_for(
    client: Client, segment_collector: CollectorHandle, proxy: Proxy
) -> None:
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    properties = {
        "plan": proxy(lambda: "pro"),
        "seats": proxy(lambda: 3),
        "ratio": proxy(lambda: 0.5),
        "trial": proxy(lambda: True),
        "day": proxy(lambda: dt.date(2024, 5, 1)),
        "at": proxy(lambda: when),
        "tags": proxy(lambda: ["a", "b"]),
        proxy(lambda: "proxied key"): 1,
    }
    ok, _ = client.track(proxy(lambda: "u1"), proxy(lambda: "Plan Chosen"), properties)
    assert ok
    [event] = segment_collector.wait_for(1)
    assert event["status"] == "good", event["reasons"]
    message = event["message"]
    assert (message["userId"], message["event"]) == ("u1", "Plan Chosen")
    assert message["properties"] == {
        "plan": "pro",
        "seats": 3,
        "ratio": 0.5,
        "trial": True,  # not the number 1
        "day": "2024-05-01",
        "at": "2024-05-01T12:00:00Z",  # as a datetime property is written
        "tags": ["a", "b"],
        "proxied key": 1,
    }


def test_a_typed_message_s_proxied_name_is_sent_as_its_text(
    client: Client, segment_collector: CollectorHandle
) -> None:
    assert client.enqueue(Track(user_id="u1", event=SimpleLazyObject(lambda: "Typed")))[0]
    [event] = segment_collector.wait_for(1)
    assert event["message"]["event"] == "Typed"


def test_a_proxy_that_cannot_be_read_is_refused_naming_its_field(client: Client) -> None:
    unbound: Any = LocalProxy(lambda: (_ for _ in ()).throw(RuntimeError("outside a request")))
    with pytest.raises(InvalidMessage, match=r"^message\.properties\.who: the LocalProxy "):
        client.track("u1", "E", {"who": unbound})
    with pytest.raises(InvalidMessage, match=r"^user_id: the LocalProxy could not be read "):
        client.track(unbound, "E")


def test_a_proxy_a_before_send_hook_adds_is_sent_as_its_value(
    collector_clients: Callable[..., Client], segment_collector: CollectorHandle
) -> None:
    def tenant(message: dict[str, Any]) -> dict[str, Any]:
        properties = {**message["properties"], "tenant": SimpleLazyObject(lambda: "acme")}
        return {**message, "properties": properties}

    client = collector_clients(sync_mode=True, before_send=tenant)
    assert client.track("u1", "Hooked", {"a": 1})[0]
    [event] = segment_collector.wait_for(1)
    assert event["message"]["properties"] == {"a": 1, "tenant": "acme"}


class Gone(Mapping[str, Any]):
    """A mapping whose backend went away."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("backend gone")

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        return 1


class Flaky(enum.Enum):
    A = 1

    @property
    def value(self) -> Any:  # type: ignore[override]
        raise RuntimeError("backend gone")


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"cart": Gone()}, "message.properties.cart: the Gone could not be read as a dict"),
        ({"cart": [Gone()]}, r"message.properties.cart\[0\]: the Gone could not be read as a dict"),
        ({"e": Flaky.A}, "message.properties.e: the Flaky could not be read as its value"),
    ],
)
def test_a_nested_value_whose_own_code_raises_is_refused_naming_its_field(
    client: Client, properties: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=f"^{reason} \\(RuntimeError: backend gone\\)"):
        client.track("u1", "E", properties)


def _fails(error: Exception) -> Callable[[], Any]:
    def read() -> Any:
        raise error

    return read


@pytest.mark.parametrize("proxy", PROXIES, ids=["SimpleLazyObject", "LocalProxy"])
@pytest.mark.parametrize(
    "error", [KeyError("cart"), ConnectionError("database gone")], ids=["KeyError", "Connection"]
)
def test_a_proxy_whose_object_cannot_be_had_is_refused_wherever_it_goes(
    client: Client, proxy: Proxy, error: Exception
) -> None:
    """Django's request.user whose backend fails, a LocalProxy of session["cart"]."""
    broken = proxy(_fails(error))
    kind = type(broken).__name__
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: client.track("u1", "E", {"cart": broken}), "message.properties.cart"),
        (lambda: client.track("u1", "E", {"cart": [broken]}), r"message.properties.cart\[0\]"),
        (lambda: client.track("u1", "E", broken), "properties"),
        (lambda: client.identify("u1", {"a": 1}, context=broken), "context"),
        (lambda: client.track("u1", "E", timestamp=broken), "timestamp"),
        (lambda: client.track("u1", "E", message_id=broken), "message_id"),
        (lambda: client.page("u1", name=broken), "name"),
        (lambda: client.track(broken, "E"), "user_id"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidMessage, match=f"^{field}: the {kind} could not be read"):
            call()


def test_proxies_of_plain_values_go_where_those_values_go(
    client: Client, segment_collector: CollectorHandle
) -> None:
    nothing = LocalProxy(lambda: None)  # Flask-Login's current_user outside a request
    twice = LocalProxy(lambda: SimpleLazyObject(lambda: "plan"))
    assert client.page(
        "u1",
        name=nothing,
        properties=SimpleLazyObject(lambda: {twice: "pro"}),
        message_id=nothing,
        timestamp=LocalProxy(lambda: "2024-05-01T12:00:00+02:00"),
    )[0]
    [event] = segment_collector.wait_for(1)
    message = event["message"]
    assert event["status"] == "good", event["reasons"]
    assert "name" not in message and message["properties"] == {"plan": "pro"}
    assert message["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert message["messageId"]


def test_a_proxy_of_none_as_properties_is_an_empty_dict_as_a_false_value_is() -> None:
    client = Client("key", send=False)
    _, message = client.track("u1", "E", LocalProxy(lambda: None))
    assert message["properties"] == {}


def test_proxies_in_a_caller_s_context_and_integrations_are_read(
    client: Client, segment_collector: CollectorHandle
) -> None:
    context = {
        "ip": LocalProxy(lambda: "203.0.113.7"),
        "traits": {"email": SimpleLazyObject(lambda: "ada@example.com")},
        "page": LocalProxy(lambda: {"url": "https://shop.example/"}),
    }
    integrations = {"Amplitude": LocalProxy(lambda: False)}
    assert client.track("u1", "E", context=context, integrations=integrations)[0]
    [event] = segment_collector.wait_for(1)
    assert event["status"] == "good", event["reasons"]
    sent = event["message"]
    assert sent["context"]["ip"] == "203.0.113.7"
    assert sent["context"]["traits"] == {"email": "ada@example.com"}
    assert sent["context"]["page"] == {"url": "https://shop.example/"}
    assert sent["integrations"]["Amplitude"] is False


@pytest.mark.parametrize("proxy", PROXIES, ids=["SimpleLazyObject", "LocalProxy"])
def test_a_proxy_in_a_context_whose_object_cannot_be_had_is_refused_naming_it(
    client: Client, proxy: Proxy
) -> None:
    broken = proxy(_fails(ConnectionError("database gone")))
    kind = type(broken).__name__
    with pytest.raises(InvalidMessage, match=f"^context.traits.email: the {kind} could not be"):
        client.track("u1", "E", context={"traits": {"email": broken}})
    with pytest.raises(InvalidMessage, match=f"^integrations.Amplitude: the {kind} could not"):
        client.track("u1", "E", integrations={"Amplitude": broken})


@pytest.mark.parametrize("where", ["context", "integrations"])
def test_a_context_that_holds_itself_is_refused_at_once(client: Client, where: str) -> None:
    node: dict[str, Any] = {"name": "root"}
    node["parent"] = node
    node["children"] = [node, node]
    with pytest.raises(InvalidMessage, match="circular reference"):
        client.track("u1", "E", **{where: {"tree": node, "on": LocalProxy(lambda: True)}})
