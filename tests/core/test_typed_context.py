"""Go's typed ``Context`` wherever a context is taken, with dataclasses as its fields."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from segment_core import Client, Context, Track, Traits
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
