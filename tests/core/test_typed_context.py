"""Go's typed ``Context`` wherever a context is taken, with dataclasses as its fields."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from segment_core import Client, Context, InvalidMessage, Track, Traits
from segment_core.messages import camel_case
from segment_core.spec import CONTEXT_OBJECTS
from tests.receiver import Receiver


@dataclasses.dataclass
class PageInfo:  # Go's analytics.PageInfo
    path: str
    url: str


def test_a_typed_context_in_a_call(receiver: Receiver, make_client: Any) -> None:
    client = make_client()
    assert client.track("u", "E", context=Context(ip="1.2.3.4", extra={"k": 1}))[0]
    assert client.identify("u", Traits().set_name("n"), Context(locale="fr"))[0]
    assert client.flush(5)
    track, identify = receiver.messages()
    assert (track["context"]["ip"], track["context"]["k"]) == ("1.2.3.4", 1)
    assert identify["context"]["locale"] == "fr"
    assert track["context"]["library"]["name"] == "segment-web"


def test_a_typed_default_context(receiver: Receiver, make_client: Any) -> None:
    client = make_client(default_context=Context(app={"name": "Shop"}))
    assert client.track("u", "E", context={"locale": "fr"})[0]
    assert client.flush(5)
    [message] = receiver.messages()
    assert (message["context"]["app"], message["context"]["locale"]) == ({"name": "Shop"}, "fr")


def test_a_typed_default_context_is_checked_naming_the_option() -> None:
    with pytest.raises(ValueError, match=r"^default_context: context\.extra must be a dict"):
        Client("key", default_context=Context(extra="x"))  # type: ignore[arg-type]


def test_a_dataclass_as_a_context_field(receiver: Receiver, make_client: Any) -> None:
    client = make_client()
    page = PageInfo("/a", "https://example.com/a")
    assert client.enqueue(Track(user_id="u", event="E", context=Context(page=page)))[0]
    assert client.track("u", "E", context=Context(page=page))[0]
    assert client.flush(5)
    for message in receiver.messages():
        assert message["context"]["page"] == {"path": "/a", "url": "https://example.com/a"}


@dataclasses.dataclass
class AppInfo:  # Go's analytics.AppInfo: every field omitempty
    name: str | None = None
    version: str | None = None
    build: str | None = None


@dataclasses.dataclass
class DeviceInfo:  # Go's analytics.DeviceInfo: AdvertisingID `json:"advertisingId"`
    id: str | None = None
    advertising_id: str | None = None
    ad_tracking_enabled: bool | None = None


@dataclasses.dataclass
class Brand:
    brand: str
    version: str | None = None


@dataclasses.dataclass
class UserAgentData:
    brands: list[Brand]
    platform_version: str | None = None
    mobile: bool = False


def test_a_dataclass_field_is_written_as_the_spec_names_it_and_unset_ones_left_out(
    receiver: Receiver, make_client: Any
) -> None:
    """As Go's structs with omitempty: an unset field overwrites no default."""
    client = make_client(default_context={"app": {"name": "Shop", "version": "1.0"}})
    context = Context(
        app=AppInfo(build="42"),
        device=DeviceInfo(advertising_id="ad-1", ad_tracking_enabled=False),
        user_agent_data=UserAgentData([Brand("Chromium", "124"), Brand("Edge")]),
    )
    assert client.track("u", "E", context=context)[0]
    assert client.enqueue(Track(user_id="u", event="E", context=context))[0]
    assert client.flush(5)
    for message in receiver.messages():
        sent = message["context"]
        assert sent["app"] == {"name": "Shop", "version": "1.0", "build": "42"}
        assert sent["device"] == {"advertisingId": "ad-1", "adTrackingEnabled": False}
        assert sent["userAgentData"] == {
            "brands": [{"brand": "Chromium", "version": "124"}, {"brand": "Edge"}],
            "mobile": False,
        }


def test_a_typed_default_context_with_dataclasses_leaves_unset_fields_out(
    receiver: Receiver, make_client: Any
) -> None:
    client = make_client(default_context=Context(app=AppInfo(name="Shop")))
    assert client.track("u", "E", context={"app": {"version": "2.0"}})[0]
    assert client.flush(5)
    [message] = receiver.messages()
    assert message["context"]["app"] == {"name": "Shop", "version": "2.0"}


@dataclasses.dataclass
class Node:
    parent: Node | None = None


def test_a_dataclass_that_holds_itself_is_refused_naming_the_field() -> None:
    node = Node()
    node.parent = node
    with pytest.raises(
        InvalidMessage,
        match=r"^context\.device\.parent: a circular reference \(the value contains itself\)$",
    ):
        Context(device=node).to_dict()


def test_a_dataclass_keeps_its_private_fields_and_refuses_two_fields_written_alike() -> None:
    @dataclasses.dataclass
    class Device:
        id: str
        _cache_token: str = "internal"

    @dataclasses.dataclass
    class Address:
        user_id: str
        userId: str

    assert Context(device=Device("d1")).to_dict() == {"device": {"id": "d1"}}
    with pytest.raises(InvalidMessage, match="'user_id' and 'userId' are both 'userId'"):
        Traits().set_address(Address("a", "b"))


def test_a_dict_contexts_object_fields_take_dataclasses_as_a_typed_contexts_do(
    receiver: Receiver, make_client: Any
) -> None:
    client = make_client(default_context={"app": AppInfo(name="Shop", version="1.0")})
    device = DeviceInfo(advertising_id="ad-1", ad_tracking_enabled=False)
    assert client.track("u", "E", context={"device": device, "custom": device})[0]
    assert client.track("u", "E", context={"app": AppInfo(build="42"), "ip": "1.2.3.4"})[0]
    assert client.enqueue(Track(user_id="u", event="E", context={"device": device}))[0]
    assert client.flush(5)
    first, second, third = (message["context"] for message in receiver.messages())
    assert first["device"] == third["device"] == Context(device=device).to_dict()["device"]
    # Under a key of its own, a dataclass is written as its fields, as anywhere else.
    assert first["custom"] == {"id": None, "advertising_id": "ad-1", "ad_tracking_enabled": False}
    assert first["app"] == {"name": "Shop", "version": "1.0"}
    assert second["app"] == {"name": "Shop", "version": "1.0", "build": "42"}


def test_a_dict_context_with_a_dataclass_field_is_still_checked() -> None:
    client = Client("key", send=False)
    with pytest.raises(InvalidMessage, match=r"^context\.ip 'nope' is not an IP address$"):
        client.track("u", "E", context={"device": DeviceInfo(id="d1"), "ip": "nope"})
    node = Node()
    node.parent = node
    with pytest.raises(
        InvalidMessage,
        match=r"^context\.device\.parent: a circular reference \(the value contains itself\)$",
    ):
        client.track("u", "E", context={"device": node})
    with pytest.raises(ValueError, match=r"^default_context: context\.os\.name must be a string"):
        Client("key", default_context={"os": AppInfo(name=7)})  # type: ignore[arg-type]


def test_the_typed_contexts_object_fields_are_the_specs() -> None:
    objects = [f.name for f in dataclasses.fields(Context) if "ContextObject" in str(f.type)]
    assert sorted(camel_case(name) for name in objects) == sorted(CONTEXT_OBJECTS)


def test_every_field_of_go_s_context_has_its_keyword() -> None:
    # analytics-go's Context: Direct `json:"direct,omitempty"` among them.
    context = Context(direct=True, ip="203.0.113.9", locale="en-US", timezone="Europe/Paris")
    assert context.to_dict() == {
        "direct": True,
        "ip": "203.0.113.9",
        "locale": "en-US",
        "timezone": "Europe/Paris",
    }
