"""Values whose own code misbehaves, or whose size is a trap: a tzinfo that fails, a
Decimal of a million digits, an object whose repr raises or runs to megabytes. Each is
refused at once with an InvalidMessage naming its field, alike by both encoders."""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import datetime as dt
import decimal
import enum
import json
import os
import re
import subprocess
import sys
import time
import types
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segment_core import Client, Context, Integrations, InvalidMessage, Properties, Track, Traits
from segment_core._snapshot import InvalidSnapshot, read_snapshot
from segment_core.collector import CollectorHandle
from segment_core.encoding import encode
from segment_core.testing import capture


class OddZone(dt.tzinfo):
    """A tzinfo of the caller's whose utcoffset() raises, or answers what Python refuses."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def utcoffset(self, when: object) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def dst(self, when: object) -> None:
        return None

    def tzname(self, when: object) -> str:
        return "Odd"


ODD_ANSWERS: dict[str, object] = {
    "raises": RuntimeError("tz database not loaded"),
    "a string": "+01:00",
    "30 hours": dt.timedelta(hours=30),
}


def _paris() -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:  # no tz database: a fixed offset instead
        return dt.timezone(dt.timedelta(hours=2))


# Dates as callers pass them; orjson wrote them itself before, and the wire keeps that.
ORDINARY_DATES: dict[str, object] = {
    "naive": dt.datetime(2024, 5, 1, 12, 30),
    "microseconds": dt.datetime(2024, 5, 1, 12, 30, 0, 123456),
    "utc": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
    "india": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=5.5))),
    "west": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    "paris": dt.datetime(2024, 5, 1, 12, 30, tzinfo=_paris()),
    "year 999": dt.datetime(999, 1, 2),
    "date": dt.date(2024, 5, 1),
    "time": dt.time(12, 30, 0, 5),
}


def _outcome(call: Callable[[], object]) -> str:
    try:
        return "sent: " + encode(call()).decode()
    except InvalidMessage as error:
        return f"refused: {error}"


def outcomes() -> dict[str, str]:
    """What a client does with each value: the JSON it sends, or why it refuses."""
    client = Client("key", send=False)

    def properties(value: object) -> Callable[[], object]:
        return lambda: client.track("u1", "Viewed", {"at": value})[1]["properties"]["at"]

    def timestamp(value: dt.datetime) -> Callable[[], object]:
        return lambda: client.track("u1", "Viewed", timestamp=value)[1]["timestamp"]

    calls: dict[str, Callable[[], object]] = {}
    for name, answer in ODD_ANSWERS.items():
        zone = OddZone(answer)
        calls[f"{name}: datetime"] = properties(dt.datetime(2024, 5, 1, tzinfo=zone))
        calls[f"{name}: time"] = properties(dt.time(12, tzinfo=zone))
        calls[f"{name}: timestamp"] = timestamp(dt.datetime(2024, 5, 1, tzinfo=zone))
    calls["ordinary dates"] = properties(ORDINARY_DATES)
    seconds = dt.timezone(dt.timedelta(hours=1, seconds=30))
    calls["an offset with seconds"] = properties(dt.datetime(2024, 5, 1, 12, tzinfo=seconds))
    calls["datetime keys"] = properties({dt.datetime(2024, 5, 1): 1, dt.date(2024, 5, 2): 2})
    calls["a decimal of 300,001 digits"] = properties(decimal.Decimal("1e300000"))
    calls["a decimal fraction beyond a float"] = properties(decimal.Decimal("1" * 400 + ".5"))
    calls["a decimal zero with a huge exponent"] = properties(decimal.Decimal("0e999999999"))
    return {name: _outcome(call) for name, call in calls.items()}


_CHILD = """
import json, sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "orjson":
            raise ModuleNotFoundError("No module named 'orjson'", name=name)
        return None

if sys.argv[2] == "without orjson":
    sys.meta_path.insert(0, _Refuse())
sys.path.insert(0, sys.argv[1])
import segment_core.encoding
assert (segment_core.encoding.orjson is None) == (sys.argv[2] == "without orjson")
from tests.core.test_hostile_objects import outcomes
print(json.dumps(outcomes()))
"""


def _outcomes_in_a_child(encoder: str) -> dict[str, str]:
    # In a child process: a tzinfo that raises used to kill the process (SIGSEGV).
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, root, encoder],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": root},
        check=False,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    found: dict[str, str] = json.loads(result.stdout)
    return found


def test_a_tzinfo_that_fails_is_refused_naming_the_field_by_both_encoders() -> None:
    found = _outcomes_in_a_child("with orjson")
    assert _outcomes_in_a_child("without orjson") == found
    no_offset = "tzinfo OddZone gives no usable UTC offset"
    for name in ODD_ANSWERS:
        assert found[f"{name}: datetime"].startswith(
            f"refused: message.properties.at: the datetime's {no_offset} ("
        ), found
        assert found[f"{name}: time"].startswith(
            f"refused: message.properties.at: the time's {no_offset} ("
        ), found
        assert found[f"{name}: timestamp"].startswith(
            f"refused: timestamp: the datetime's {no_offset} ("
        ), found
    assert found["raises: datetime"].endswith("(RuntimeError: tz database not loaded)")
    # An offset RFC 3339 cannot write (seconds) is written in UTC.
    assert found["an offset with seconds"] == 'sent: "2024-05-01T10:59:30Z"'
    assert found["datetime keys"] == 'sent: {"2024-05-01T00:00:00":1,"2024-05-02":2}'
    assert found["a decimal zero with a huge exponent"] == "sent: 0"
    assert found["a decimal fraction beyond a float"] == (
        "refused: message.properties.at: Decimal '11111111111111111...1111111111111111.5'"
        " is not an integer, and beyond the range of a float"
    )


def test_dates_are_written_as_orjson_itself_wrote_them() -> None:
    import orjson  # here: the module is imported without it too (outcomes())

    expected = orjson.dumps(ORDINARY_DATES, option=orjson.OPT_UTC_Z)
    assert encode(ORDINARY_DATES) == expected
    assert json.loads(expected)["india"] == "2024-05-01T12:30:00+05:30"


def test_dates_arrive_as_iso_text(segment_collector: CollectorHandle) -> None:
    client = Client("key", host=segment_collector.url)
    try:
        client.track("u1", "Dated", {"dates": ORDINARY_DATES})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    [event] = segment_collector.wait_for(1, event="Dated")
    assert event["status"] == "good", event["reasons"]
    assert event["message"]["properties"]["dates"] == json.loads(encode(ORDINARY_DATES))


@pytest.fixture
def client() -> Client:
    return Client("key", send=False)


@pytest.mark.parametrize("text", ["1e300000", "-12345e100000", "1e3914"])
def test_a_decimal_too_long_to_write_is_refused_at_once(client: Client, text: str) -> None:
    started = time.monotonic()
    with pytest.raises(
        InvalidMessage,
        match=r"^message\.properties\.revenue: the integer has \d+ digits, "
        r"out of range \(at most 13000 bits\); send it as a string$",
    ):
        client.track("u1", "Order Completed", {"revenue": decimal.Decimal(text)})
    assert time.monotonic() - started < 1.0  # int() of it alone took seconds


def test_a_decimal_within_the_integer_limit_keeps_every_digit(client: Client) -> None:
    largest = 2**13000 - 1
    _, message = client.track("u1", "Order Completed", {"n": decimal.Decimal(largest)})
    assert json.loads(encode(message))["properties"]["n"] == largest
    with pytest.raises(InvalidMessage, match=r"the integer has 13001 bits"):
        client.track("u1", "Order Completed", {"n": decimal.Decimal(largest + 1)})


def test_a_decimal_fraction_beyond_a_float_is_refused_not_sent_as_null(client: Client) -> None:
    # orjson wrote the float it became, infinity, as null.
    with pytest.raises(InvalidMessage, match=r"^message\.properties\.v\.n: Decimal"):
        client.track("u1", "Viewed", {"v": {"n": decimal.Decimal("9" * 400 + ".5")}})


class FailingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("lazy object not loaded")

    def __hash__(self) -> int:
        return 1


def _deep_list(levels: int) -> list[Any]:
    deep: list[Any] = []
    for _ in range(levels):
        deep = [deep]
    return deep


@pytest.mark.parametrize(
    "event",
    [
        {f"k{i}": "v" * 10 for i in range(200_000)},
        _deep_list(100_000),
        FailingRepr(),
        " " * 1_000_000,
    ],
    ids=["big dict", "deep list", "failing repr", "long blank text"],
)
def test_a_wrong_event_is_described_briefly(client: Client, event: object) -> None:
    # An InvalidMessage: not a RecursionError, nor the error of the value's repr.
    with pytest.raises(InvalidMessage, match=r"^event must be a non-empty string") as raised:
        client.track("u1", event)
    assert len(str(raised.value)) < 200, str(raised.value)[:300]


def test_a_blank_event_is_shown_as_it_is(client: Client) -> None:
    with pytest.raises(InvalidMessage, match=r"got ' \\t'$"):
        client.track("u1", " \t")


@pytest.mark.parametrize(
    ("properties", "start"),
    [
        ({FailingRepr(): 1}, "message.properties key <FailingRepr"),
        ({tuple(range(1_000_000)): 1}, "message.properties key (0, 1, 2, 3, ...)"),
        ({10**3000: 1, str(10**3000): 2}, "message.properties: the keys 1000"),
    ],
    ids=["failing repr", "big tuple", "long colliding keys"],
)
def test_a_bad_key_is_described_briefly(
    client: Client, properties: dict[Any, int], start: str
) -> None:
    with pytest.raises(InvalidMessage) as raised:
        client.track("u1", "Viewed", properties)
    assert str(raised.value).startswith(start), str(raised.value)[:300]
    assert len(str(raised.value)) < 300, str(raised.value)[:300]


@pytest.mark.parametrize("user_id", [FailingRepr(), ["x"] * 1_000_000, _deep_list(100_000)])
def test_a_snapshot_describes_a_bad_field_briefly(user_id: object) -> None:
    with pytest.raises(InvalidSnapshot, match=r"^snapshot\.userId must be a non-empty string") as e:
        read_snapshot({"version": 1, "userId": user_id})
    assert len(str(e.value)) < 200


class _ItemsFail(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("the items are gone")


class _TruthFails:
    def __bool__(self) -> bool:
        raise RuntimeError("no truth to tell")


@pytest.mark.parametrize("value", [_ItemsFail(a=1), _TruthFails()])
@pytest.mark.parametrize("field", ["properties", "context", "integrations"])
def test_a_mapping_that_fails_to_be_read_is_refused_naming_the_field(
    client: Client, value: object, field: str
) -> None:
    with pytest.raises(
        InvalidMessage, match=rf"^{field}: the \w+ could not be read as a dict"
    ) as raised:
        client.track("u1", "Viewed", **{field: value})
    assert isinstance(raised.value.__cause__, RuntimeError)  # the object's own error, kept


def test_a_time_limit_landing_as_a_mapping_is_read_reaches_the_caller(client: Client) -> None:
    from rq.timeouts import JobTimeoutException  # an Exception, and RQ's job time limit

    class _LimitLands(dict):  # type: ignore[type-arg]
        def items(self) -> Any:
            raise JobTimeoutException("Task exceeded maximum timeout value")

    with pytest.raises(JobTimeoutException):
        client.track("u1", "Viewed", _LimitLands(a=1))


@dataclasses.dataclass
class _DeviceNotReady:
    """A dataclass of the app's whose field is set later (``init=False``)."""

    model: str = "phone"
    advertising_id: str = dataclasses.field(init=False)


class _KeyWithoutText:
    """A key whose own ``str()`` fails (a model whose ``__str__`` reads a deleted row)."""

    def __str__(self) -> str:
        raise LookupError("the row is gone")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.track("u", "E", context={"device": _DeviceNotReady()}), "context.device"),
        (
            lambda c: c.enqueue(
                Track(user_id="u", event="E", context=Context(device=_DeviceNotReady()))
            ),
            "context.device",
        ),
        (lambda c: Traits().set_address(_DeviceNotReady()), "traits.address"),
        (lambda c: Properties().set_products([_DeviceNotReady()]), "properties.products[0]"),
    ],
)
def test_a_dataclass_field_never_set_is_refused_naming_it(
    call: Callable[[Client], object], field: str
) -> None:
    with pytest.raises(InvalidMessage, match=rf"^{re.escape(field)}\.advertising_id: the field"):
        call(Client("k", send=False))


@pytest.mark.parametrize(
    "arguments",
    [
        {"context": {_KeyWithoutText(): 1}},
        {"context": {"x": {_KeyWithoutText(): 1}}},
        {"integrations": {_KeyWithoutText(): True}},
    ],
)
def test_a_key_whose_str_fails_is_refused_naming_its_type(arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessage, match=r"key <.*>: a key of type .*_KeyWithoutText cannot"):
        Client("k", send=False).track("u", "E", **arguments)


def test_a_str_enum_member_holding_an_address_is_an_ip_and_changes_no_later_verdict() -> None:
    class Office(str, enum.Enum):
        EGRESS = "203.0.113.7"

    client = Client("k", send=False)
    with capture() as events:
        client.track("u", "E", context={"ip": Office.EGRESS})
        client.enqueue(Track(user_id="u", event="F", context=Context(ip=Office.EGRESS)))
        client.track("u", "G", context={"ip": _Text("203.0.113.7")})
    assert [e["context"]["ip"] for e in events] == ["203.0.113.7"] * 3


class _Text(str):
    """A str subclass, as Django's SafeString is."""


def test_any_mapping_is_an_object_wherever_the_spec_wants_one() -> None:
    page = collections.ChainMap({"path": "/cart"}, {"title": "Cart"})
    flags = types.MappingProxyType({"apiKey": "x"})
    client = Client(
        "k",
        send=False,
        before_send=lambda m: {
            **m,
            "properties": collections.ChainMap({"coupon": "X"}, m["properties"]),
        },
    )
    with capture() as events:
        client.track("u", "E", {"a": 1}, context={"page": page}, integrations={"Mixpanel": flags})
        Client("k", send=False, default_context={"page": page}).track("u", "F")
    assert events[0]["properties"] == {"coupon": "X", "a": 1}
    assert events[0]["context"]["page"] == {"path": "/cart", "title": "Cart"}
    assert events[0]["integrations"] == {"Mixpanel": {"apiKey": "x"}}
    assert events[1]["context"]["page"] == {"path": "/cart", "title": "Cart"}


class _GoneMapping(collections.abc.Mapping[str, Any]):
    """A mapping whose reads fail (a closed shelf, a backend that is gone)."""

    def __getitem__(self, key: str) -> Any:
        raise ConnectionError("the backend is gone")

    def __iter__(self) -> Any:
        raise ConnectionError("the backend is gone")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("field", ["page", "campaign", "library", "consent"])
def test_a_context_object_whose_reads_fail_is_refused_naming_it(field: str) -> None:
    with pytest.raises(InvalidMessage, match=rf"^context\.{field}: the _GoneMapping could not"):
        Client("k", send=False).track("u", "E", context={field: _GoneMapping()})


class _NoRepr(str):
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_an_ip_of_a_str_subclass_whose_repr_fails_is_refused_with_its_text() -> None:
    with pytest.raises(InvalidMessage, match=r"context\.ip 'not-an-ip' is not an IP address"):
        Client("k", send=False).track("u", "E", context={"ip": _NoRepr("not-an-ip")})


def test_a_multidict_context_object_is_checked_as_it_is_sent() -> None:
    """Its storage holds lists (Werkzeug's MultiDict, Django's QueryDict): sent as
    lists, refused where the Spec wants strings, as what is sent would be."""
    from werkzeug.datastructures import MultiDict

    campaign = MultiDict({"name": "spring", "source": "crm"})
    with pytest.raises(
        InvalidMessage, match=r"context\.campaign\.name must be a string, got array"
    ):
        Client("k", send=False).track("u", "E", context={"campaign": campaign})


class GoneSession(collections.abc.Mapping[str, Any]):
    """A mapping whose backend is gone: it lists a key, then fails to read it."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("backend gone")

    def __iter__(self) -> Any:
        return iter(["url"])

    def __len__(self) -> int:
        return 1


def _fails_part_way() -> Any:
    yield {"sku": "a"}
    raise RuntimeError("cursor closed")


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: Track(event="E", user_id="u", context=Context(page=GoneSession())),
            "context.page",
        ),
        (
            lambda: Track(event="E", user_id="u", context=Context(extra=GoneSession())),
            "context.extra",
        ),
        (lambda: Traits().set_address(GoneSession()), "traits.address"),
        (lambda: Traits().set_company(GoneSession()), "traits.company"),
        (lambda: Properties().set_products([GoneSession()]), "properties.products[0]"),
        (lambda: Properties().set_products(_fails_part_way()), "properties.products"),
        (lambda: Properties().set_keywords(iter_failing_words()), "properties.keywords"),
        (lambda: Integrations().set("Mixpanel", GoneSession()), "integrations.Mixpanel"),
    ],
)
def test_a_mapping_whose_reads_fail_in_a_typed_message_or_a_builder_is_refused_naming_it(
    build: Callable[[], Any], field: str
) -> None:
    with pytest.raises(InvalidMessage) as raised:
        Client("key", send=False).enqueue(build()) if field.startswith("context") else build()
    assert str(raised.value).startswith(f"{field}: ")
    assert "RuntimeError" in str(raised.value)


def iter_failing_words() -> Any:
    yield "shoes"
    raise RuntimeError("cursor closed")
