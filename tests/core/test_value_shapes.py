"""Values of unusual shape: tuples nested without end, dataclasses that hold themselves
or what cannot be copied, dict subclasses below the top. Each is refused naming its
field, or written the same way whichever path of the encoder writes the message."""

from __future__ import annotations

import dataclasses
import fractions
import json
import numbers
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from segment_core import Client, Context, InvalidMessage, Properties, Traits
from segment_core.collector import CollectorHandle
from segment_core.spec import MAX_NESTING_DEPTH
from segment_core.testing import capture
from tests.core.test_hostile_values import BLOCK_ORJSON

ROOT = str(Path(__file__).resolve().parents[2])
#: Past 64 bits: orjson refuses it, so the message takes the encoder's checked path.
BIG_ORDER_ID = 2**64
#: The first nested value refused in properties or a context (the message is level 1,
#: they are level 2): the path the refusal names.
TOO_DEEP = (
    f"{'[0]' * (MAX_NESTING_DEPTH - 2)}: "
    f"nested more than {MAX_NESTING_DEPTH} levels deep (objects and arrays)"
)


def _run(script: str, *args: str, block_orjson: bool = False) -> Any:
    """Run ``script`` in a fresh interpreter (what it does may end the process) and
    return the JSON it prints."""
    prelude = BLOCK_ORJSON if block_orjson else ""
    result = subprocess.run(
        [sys.executable, "-c", prelude + script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ROOT},
        check=False,
    )
    assert result.returncode == 0, f"exit code {result.returncode}: {result.stderr[-500:]}"
    return json.loads(result.stdout)


_DEEP_CALLS = """
import json, sys
from segment_core import Client, Context, InvalidMessage, Properties, Traits

def chain(kind, levels):
    value = 1
    for level in range(levels):
        value = [value] if kind == "list" or (kind == "mixed" and level % 2) else (value,)
    return value

outcomes = {}
for kind in ("list", "tuple", "mixed"):
    for levels in (300, 2_000, 100_000):
        tree = chain(kind, levels)
        calls = {
            "properties": lambda c: c.track("u1", "Tree Saved", {"tree": tree}),
            "traits": lambda c: c.identify("u1", {"tree": tree}),
            "context": lambda c: c.track("u1", "Tree Saved", context={"tree": tree}),
            "before_send": lambda c: Client(
                "key", send=False, before_send=lambda m: {**m, "properties": {"tree": tree}}
            ).track("u1", "Tree Saved"),
        }
        for where, call in calls.items():
            try:
                call(Client("key", send=False))
                outcome = "accepted"
            except InvalidMessage as error:
                outcome = str(error)
            outcomes[f"{kind} {levels} in {where}"] = outcome
print(json.dumps(outcomes))
"""


def test_a_tuple_nested_without_end_is_refused_as_a_list_is() -> None:
    # What before_send returns is refused where the hook put the tree: the hook's
    # failure, so the message goes as the call made it.
    field_of = {"properties": "properties", "traits": "traits", "context": "context"}
    field_of["before_send"] = "properties"
    outcomes = _run(_DEEP_CALLS)
    assert len(outcomes) == 3 * 3 * len(field_of)
    for name, outcome in outcomes.items():
        where = name.rsplit(" ", 1)[1]
        if where == "before_send":  # the hook's failure: logged, and the message sent as made
            assert outcome == "accepted", name
            continue
        assert outcome == f"message.{field_of[where]}.tree{TOO_DEEP}", name


def test_a_default_context_nested_without_end_is_refused_at_construction() -> None:
    deep: object = 1
    for _ in range(2_000):
        deep = (deep,)
    with pytest.raises(ValueError, match=r"^default_context\.app(\[0\])+: nested more than"):
        Client("key", send=False, default_context={"app": deep})


def test_tuples_within_the_limit_reach_the_collector_as_arrays(
    segment_collector: CollectorHandle,
) -> None:
    deepest: object = "leaf"
    for _ in range(MAX_NESTING_DEPTH - 2):  # the properties are level 2
        deepest = (deepest, 1)
    client = Client("key", host=segment_collector.url)
    try:
        client.track("u1", "Tree Saved", {"tree": deepest})
        with pytest.raises(InvalidMessage, match=r"^message\.properties\.tree(\[0\])+: nested"):
            client.track("u1", "Tree Saved", {"tree": (deepest,)})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    [event] = segment_collector.wait_for(1)
    assert event["status"] == "good"
    assert event["message"]["properties"]["tree"] == json.loads(json.dumps(deepest))


@dataclasses.dataclass
class Node:
    name: str
    parent: Node | None = None
    children: list[Node] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Job:
    id: int
    lock: Any


@dataclasses.dataclass
class Order:
    id: str
    lines: list[dict[str, Any]]
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _holds_itself() -> Node:
    node = Node("root")
    node.parent = node
    return node


def _holds_itself_in_a_list() -> Node:
    root = Node("root")
    root.children.append(Node("leaf", parent=root))
    return root


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (_holds_itself(), "message.properties.node.parent"),
        (_holds_itself_in_a_list(), "message.properties.node.children[0].parent"),
    ],
)
def test_a_dataclass_that_holds_itself_is_refused_naming_the_field(value: Node, path: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        Client("key", send=False).track("u1", "Job Done", {"node": value})
    assert str(raised.value) == f"{path}: a circular reference (the value contains itself)"


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c, n: c.track("u1", "E", context={"device": n}), "context.device.parent"),
        (lambda c, n: c.track("u1", "E", context=Context(device=n)), "context.device.parent"),
        (
            lambda c, n: c.track("u1", "E", Properties().set_products([n])),
            "properties.products[0].parent",
        ),
        (lambda c, n: c.identify("u1", Traits().set_company(n)), "traits.company.parent"),
        (
            lambda c, n: c.track("u1", "E", context={"device": {"nodes": [n]}}),
            "message.context.device.nodes[0].parent",
        ),
    ],
    ids=["context dict", "Context", "products", "company", "in a list"],
)
def test_a_dataclass_that_holds_itself_in_a_context_or_a_builder_is_a_circular_reference(
    call: Callable[[Client, Node], object], path: str
) -> None:
    with pytest.raises(InvalidMessage) as raised:
        call(Client("key", send=False), _holds_itself())
    assert str(raised.value) == f"{path}: a circular reference (the value contains itself)"


def test_a_dataclass_shared_by_two_fields_is_no_circular_reference() -> None:
    leaf = Node("leaf")
    with capture() as sent:
        Client("key", send=False).track(
            "u1", "E", Properties().set_products([leaf, leaf]), context=Context(device=leaf)
        )
    assert sent[0]["properties"]["products"] == [{"name": "leaf", "children": []}] * 2
    assert sent[0]["context"]["device"] == {"name": "leaf", "children": []}


def test_a_dataclass_holding_what_cannot_be_encoded_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidMessage) as raised:
        Client("key", send=False).track("u1", "Job Done", {"job": Job(1, threading.Lock())})
    assert str(raised.value) == (
        "message.properties.job.lock: a value of type _thread.lock cannot be encoded as JSON"
    )


def test_a_dataclass_is_written_alike_whichever_path_writes_the_message(
    segment_collector: CollectorHandle,
) -> None:
    # Its lock is its own business (a leading "_"): never copied, never sent.
    order = Order("o-1", [{"sku": "s-1", "quantity": 2}])
    client = Client("key", host=segment_collector.url)
    try:
        client.track("u1", "Order Completed", {"order": order})
        client.track("u1", "Order Completed", {"order": order, "big": BIG_ORDER_ID})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    events = segment_collector.wait_for(2)
    assert [event["status"] for event in events] == ["good", "good"]
    written = [event["message"]["properties"]["order"] for event in events]
    assert written == [{"id": "o-1", "lines": [{"sku": "s-1", "quantity": 2}]}] * 2


def _filters() -> MultiDict[str, str]:
    return MultiDict([("color", "red"), ("color", "blue")])


@pytest.mark.parametrize(
    "others",
    [{}, {"order": BIG_ORDER_ID}, {"by_size": {42: 1}}],
    ids=["alone", "with an integer past 64 bits", "with an integer key"],
)
def test_a_dict_subclass_below_the_top_is_sent_as_its_storage_whatever_else_is_sent(
    segment_collector: CollectorHandle, others: dict[str, Any]
) -> None:
    client = Client("key", host=segment_collector.url)
    try:
        client.track("u1", "Searched", {"filters": _filters(), **others})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    [event] = segment_collector.wait_for(1)
    assert event["message"]["properties"]["filters"] == {"color": ["red", "blue"]}


@pytest.mark.parametrize(
    "others",
    [{}, {"order": BIG_ORDER_ID}],
    ids=["alone", "with an integer past 64 bits"],
)
def test_a_view_of_other_dicts_below_the_top_is_sent_through_its_items(
    segment_collector: CollectorHandle, others: dict[str, Any]
) -> None:
    # Werkzeug's CombinedMultiDict (Flask's request.values) keeps nothing in its own
    # storage: its storage would be {}.
    values = CombinedMultiDict([MultiDict([("q", "shoes")]), MultiDict([("sort", "price")])])
    client = Client("key", host=segment_collector.url)
    try:
        client.track("u1", "Searched", {"params": values, **others})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    [event] = segment_collector.wait_for(1)
    assert event["message"]["properties"]["params"] == {"q": "shoes", "sort": "price"}


_SEARCHED = """
import json
import numbers
from werkzeug.datastructures import MultiDict
from segment_core import Client
from segment_core.testing import capture

filters = MultiDict([("color", "red"), ("color", "blue")])
with capture() as sent:
    Client("key", send=False).track("u1", "Searched", {"filters": filters})
print(json.dumps(sent[0]["properties"]))
"""


def test_without_orjson_a_dict_subclass_below_the_top_is_sent_as_its_storage() -> None:
    assert _run(_SEARCHED, block_orjson=True) == {"filters": {"color": ["red", "blue"]}}


def test_a_dict_subclass_in_a_default_context_is_sent_as_its_storage() -> None:
    client = Client("key", send=False, default_context={"app": {"filters": _filters()}})
    with capture() as sent:
        client.track("u1", "Searched")
    assert sent[0]["context"]["app"] == {"filters": {"color": ["red", "blue"]}}


def _proxies() -> list[tuple[Any, Any]]:
    """Lazy proxies of a dict and a list, which pass isinstance() for them without
    their storage: Werkzeug's (Flask's session, g) and Django's (request.user);
    each with what it stands for."""
    from django.utils.functional import SimpleLazyObject
    from werkzeug.local import LocalProxy

    return [
        (proxy(lambda: {"plan": "pro"}), {"plan": "pro"})
        for proxy in (LocalProxy, SimpleLazyObject)
    ] + [(proxy(lambda: ["a", "b"]), ["a", "b"]) for proxy in (LocalProxy, SimpleLazyObject)]


@pytest.mark.parametrize(("proxy", "expected"), _proxies())
def test_a_lazy_proxy_is_written_as_what_it_stands_for(proxy: Any, expected: Any) -> None:
    client = Client("k", send=False, default_context={"app": {"x": proxy}})
    with capture() as events:
        client.track("u1", "Cart Viewed", {"nested": {"v": proxy}, "v": proxy})
    [event] = events
    assert event["properties"] == {"nested": {"v": expected}, "v": expected}
    assert event["context"]["app"] == {"x": expected}


@dataclasses.dataclass
class Receipt:
    id: int


def test_a_dataclass_is_written_as_its_fields_whatever_else_the_message_holds() -> None:
    order = Receipt(1)
    order.total = 42  # type: ignore[attr-defined]  # an attribute that is no field
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Alone", {"order": order})
        client.track("u1", "Beside a big integer", {"order": order, "n": BIG_ORDER_ID})
    assert [event["properties"]["order"] for event in events] == [{"id": 1}, {"id": 1}]


class _LengthFails(dict[str, int]):
    def __len__(self) -> int:
        raise RuntimeError("no length")


def test_a_nested_dict_whose_length_cannot_be_read_is_sent_as_its_storage() -> None:
    client = Client("key", send=False)
    with capture() as sent:
        assert client.track("u1", "Searched", {"counts": _LengthFails(a=1)})[0]
    assert sent[0]["properties"]["counts"] == {"a": 1}


class _Count:
    """An integer of another library, as numpy's are: registered as an Integral,
    no subclass of int."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class _Ratio:
    """A real number of another library, as numpy's float16 is: no subclass of float."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


numbers.Integral.register(_Count)
numbers.Real.register(_Ratio)


def test_numbers_of_other_libraries_reach_the_collector_as_the_numbers_they_stand_for(
    segment_collector: CollectorHandle,
) -> None:
    client = Client("key", host=segment_collector.url)
    try:
        client.track(
            "u1",
            "Scored",
            {
                "count": _Count(2**64 + 1),
                "ratio": _Ratio(0.25),
                "third": fractions.Fraction(1, 4),
                "scores": [_Count(1), {"best": _Ratio(2.0)}],
                _Count(7): "by count",
            },
        )
        assert client.flush(10)
    finally:
        client.shutdown(5)
    [event] = segment_collector.wait_for(1)
    assert event["message"]["properties"] == {
        "count": 2**64 + 1,
        "ratio": 0.25,
        "third": 0.25,
        "scores": [1, {"best": 2.0}],
        "7": "by count",
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (_Ratio(float("nan")), "nan is not a number JSON can hold"),
        (_Count(2**20_000), "integer"),
        (complex(1, 2), "a value of type complex cannot be encoded as JSON"),
    ],
)
def test_a_number_json_cannot_hold_is_refused_naming_the_field(value: object, problem: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        Client("key", send=False).track("u1", "Scored", {"score": value})
    assert str(raised.value).startswith("message.properties.score: ")
    assert problem in str(raised.value)
