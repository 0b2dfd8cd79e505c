"""Values that frameworks and data libraries hand to a call: lazy translations are
sent as their text, a datetime that stands for no date is refused naming its field."""

from __future__ import annotations

import datetime as dt
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import models
from django.utils.functional import empty, lazy, lazystr
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from segment_core import Client, Context, InvalidMessage, Page, Properties
from segment_core.collector import CollectorHandle
from segment_core.jsonvalues import plain
from segment_core.testing import capture


class OrderStatus(models.TextChoices):
    PAID = "paid", gettext_lazy("Paid")


@pytest.fixture
def translations() -> Iterator[None]:
    """Django settings enough to translate, when no other test configured them."""
    from django.conf import settings
    from django.utils.translation import _trans

    if settings.configured:
        yield
        return
    settings.configure(USE_I18N=False)
    try:
        yield
    finally:
        settings._wrapped = empty
        _trans.__dict__.clear()  # Django keeps the functions USE_I18N chose


def _untranslatable() -> str:
    raise RuntimeError("working outside of application context")


def _sent(collector: CollectorHandle, calls: Callable[[Client], object], count: int) -> list[Any]:
    client = Client("key", host=collector.url)
    try:
        calls(client)
        assert client.flush(10)
    finally:
        client.shutdown(5)
    events = collector.wait_for(count)
    assert [e["status"] for e in events] == ["good"] * count, [e["reasons"] for e in events]
    return [e["message"] for e in events]


def test_django_lazy_text_is_sent_as_its_text(
    translations: None, segment_collector: CollectorHandle
) -> None:
    def calls(client: Client) -> None:
        client.track(
            "u1",
            "Order Paid",
            {
                "status_label": OrderStatus.PAID.label,
                "title": gettext_lazy("Thanks"),
                "greeting": format_lazy("{} {}", gettext_lazy("Hello"), "Ada"),
                "tags": [lazystr("new"), {"nested": lazystr("deep")}],
                gettext_lazy("Color"): "red",
            },
        )
        client.identify("u1", {"plan": gettext_lazy("Pro")})

    track, identify = _sent(segment_collector, calls, 2)
    assert track["properties"] == {
        "status_label": "Paid",
        "title": "Thanks",
        "greeting": "Hello Ada",
        "tags": ["new", {"nested": "deep"}],
        "Color": "red",
    }
    assert identify["traits"] == {"plan": "Pro"}


def test_django_lazy_text_is_sent_as_an_event_s_or_a_page_s_name(
    translations: None, segment_collector: CollectorHandle
) -> None:
    def calls(client: Client) -> None:
        client.track("u1", gettext_lazy("Order Paid"))
        client.page("u1", gettext_lazy("Shop"), gettext_lazy("Checkout"))
        client.screen("u1", lazystr("Apps"), lazystr("Settings"))

    track, page, screen = _sent(segment_collector, calls, 3)
    assert track["event"] == "Order Paid"
    assert (page["category"], page["name"]) == ("Shop", "Checkout")
    assert (screen["category"], screen["name"]) == ("Apps", "Settings")
    client = Client("key", send=False)
    with pytest.raises(InvalidMessage, match=r"^event: lazy text .* whose str"):
        client.track("u1", lazy(_untranslatable, str)())
    with pytest.raises(InvalidMessage, match=r"^event must be a non-empty string"):
        client.track("u1", lazystr(" "))


def test_django_lazy_text_is_taken_where_the_spec_asks_for_a_string(
    translations: None, segment_collector: CollectorHandle
) -> None:
    """A translated page title, a lazy URL, a campaign's or a trait's text: sent as
    their text wherever a reserved field must be a string."""

    def calls(client: Client) -> None:
        client.page(
            "u1",
            name="Checkout",
            properties={"title": gettext_lazy("Thanks"), "path": lazystr("/checkout")},
            context={
                "page": {"title": gettext_lazy("Thanks"), "search": lazystr("?a=1")},
                "campaign": {"name": lazystr("Spring")},
                "locale": lazystr("en-US"),
            },
        )
        client.identify("u1", {"title": gettext_lazy("Pro"), "address": {"city": lazystr("Oslo")}})
        client.enqueue(
            Page(
                user_id="u1",
                name="Shop",
                properties=Properties().set_title(gettext_lazy("Shop")),
                context=Context(locale=lazystr("fr-FR")),
            )
        )

    page, identify, typed = _sent(segment_collector, calls, 3)
    assert page["properties"] == {"title": "Thanks", "path": "/checkout"}
    assert page["context"]["page"] == {"title": "Thanks", "search": "?a=1"}
    assert (page["context"]["campaign"], page["context"]["locale"]) == ({"name": "Spring"}, "en-US")
    assert identify["traits"] == {"title": "Pro", "address": {"city": "Oslo"}}
    assert (typed["properties"]["title"], typed["context"]["locale"]) == ("Shop", "fr-FR")
    client = Client("key", send=False)
    with pytest.raises(InvalidMessage, match=r"properties\.search 'a=1' must start with '\?'"):
        client.page("u1", properties={"search": lazystr("a=1")})


def test_lazy_text_is_plain_text_for_either_encoder() -> None:
    value = plain({"a": lazystr("x"), lazystr("k"): [lazystr("y")]})
    assert value == {"a": "x", "k": ["y"]}
    assert all(type(text) is str for text in (value["a"], *value, *value["k"]))


def test_lazy_text_whose_translation_fails_is_refused_naming_its_field() -> None:
    client = Client("key", send=False)
    failing = lazy(_untranslatable, str)()
    with pytest.raises(InvalidMessage) as raised:
        client.track("u1", "Viewed", {"cart": {"label": failing}})
    assert str(raised.value) == (
        "message.properties.cart.label: lazy text (__proxy__) whose str() failed "
        "(RuntimeError: working outside of application context)"
    )


class _LazyString:
    """What Flask-Babel's and Babel's ``lazy_gettext`` return: a call made when read as text."""

    def __init__(self, func: Callable[..., str], *args: Any) -> None:
        self._func, self._args = func, args

    def __str__(self) -> str:
        return self._func(*self._args)


@pytest.mark.parametrize(
    ("module_name", "class_name"),
    [("flask_babel.speaklater", "LazyString"), ("babel.support", "LazyProxy")],
)
def test_babel_lazy_text_is_sent_as_its_text(
    monkeypatch: pytest.MonkeyPatch,
    segment_collector: CollectorHandle,
    module_name: str,
    class_name: str,
) -> None:
    module = types.ModuleType(module_name)
    setattr(module, class_name, _LazyString)
    monkeypatch.setitem(sys.modules, module_name, module)

    [track] = _sent(
        segment_collector,
        lambda client: client.track("u1", "Viewed", {"title": _LazyString(str.upper, "hi")}),
        1,
    )
    assert track["properties"] == {"title": "HI"}


def test_unknown_objects_are_still_refused() -> None:
    message = f"a value of type {__name__}._LazyString cannot be encoded"
    with pytest.raises(InvalidMessage, match=message):
        Client("key", send=False).track("u1", "Viewed", {"v": _LazyString(str, "x")})


# -- datetimes that stand for no date: pandas' NaT ---------------------------------


class NotATime(dt.datetime):
    """As pandas' NaT: a datetime whose fields are NaN and which equals nothing."""

    def __new__(cls) -> NotATime:
        return super().__new__(cls, 1, 1, 1)

    @property
    def year(self) -> Any:
        return float("nan")

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = dt.datetime.__hash__

    def __repr__(self) -> str:
        return "NaT"


class Unequal(dt.datetime):
    """Real fields, yet not equal to itself: no date either."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = dt.datetime.__hash__


class Stamp(dt.datetime):
    """A datetime subclass that is a real date (as pandas' Timestamp is)."""


NOT_A_DATE = "NotATime NaT is not a date (a missing value, such as pandas' NaT)"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: c.identify("u1", {"signed_up_at": NotATime()}),
            f"message.traits.signed_up_at: {NOT_A_DATE}",
        ),
        (
            lambda c: c.track("u1", "E", {"at": [NotATime()]}),
            f"message.properties.at[0]: {NOT_A_DATE}",
        ),
        (lambda c: c.track("u1", "E", {NotATime(): 1}), f"message.properties key: {NOT_A_DATE}"),
        (lambda c: c.track("u1", "E", timestamp=NotATime()), f"timestamp: {NOT_A_DATE}"),
    ],
)
def test_a_datetime_that_is_no_date_is_refused_naming_its_field(
    call: Callable[[Client], object], message: str
) -> None:
    with pytest.raises(InvalidMessage) as raised:
        call(Client("key", send=False))
    assert str(raised.value) == message


def test_a_datetime_unequal_to_itself_is_no_date() -> None:
    client = Client("key", send=False)
    for call in (
        lambda: client.track("u1", "E", {"at": Unequal(2024, 1, 1)}),
        lambda: client.track("u1", "E", timestamp=Unequal(2024, 1, 1)),
    ):
        with pytest.raises(InvalidMessage, match="is not a date"):
            call()


def test_datetime_subclasses_that_are_dates_are_sent(segment_collector: CollectorHandle) -> None:
    [track] = _sent(
        segment_collector,
        lambda client: client.track(
            "u1", "E", {"at": Stamp(2024, 5, 1, 12, 30)}, timestamp=Stamp(2024, 5, 1, 12)
        ),
        1,
    )
    assert track["properties"] == {"at": "2024-05-01T12:30:00"}
    assert track["timestamp"] == "2024-05-01T12:00:00.000Z"


class NanoStamp(dt.datetime):
    """A datetime that keeps nanoseconds past its microseconds, as pandas' Timestamp."""

    nanosecond = 0

    @classmethod
    def of(cls, *fields: Any, nanosecond: int, **named: Any) -> NanoStamp:
        stamp = cls(*fields, **named)
        stamp.nanosecond = nanosecond
        return stamp


def test_the_nanoseconds_of_a_datetime_that_keeps_them_are_sent() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    client = Client("key", send=False)
    with capture() as events:
        client.track(
            "u1",
            "E",
            {
                "at": NanoStamp.of(2024, 1, 2, 3, 4, 5, 123456, nanosecond=789),
                "only": NanoStamp.of(2024, 1, 2, 3, 4, 5, nanosecond=500),
                "utc": NanoStamp.of(2024, 1, 2, 3, 4, 5, 7, tzinfo=dt.UTC, nanosecond=1),
                "paris": NanoStamp.of(2024, 1, 2, 3, 4, 5, tzinfo=paris, nanosecond=2),
                "key": {NanoStamp.of(2024, 1, 2, nanosecond=1): "a"},
            },
        )
    assert events[0]["properties"] == {
        "at": "2024-01-02T03:04:05.123456789",
        "only": "2024-01-02T03:04:05.000000500",
        "utc": "2024-01-02T03:04:05.000007001Z",
        "paris": "2024-01-02T03:04:05.000000002+01:00",
        "key": {"2024-01-02T00:00:00.000000001": "a"},
    }


def test_pandas_nat_is_refused_and_timestamps_are_sent() -> None:
    pandas = pytest.importorskip("pandas")
    client = Client("key", send=False)
    with pytest.raises(InvalidMessage, match=r"^message\.traits\.seen: NaTType NaT is not a date"):
        client.identify("u1", {"seen": pandas.NaT})
    with pytest.raises(InvalidMessage, match=r"^timestamp: NaTType NaT is not a date"):
        client.track("u1", "E", timestamp=pandas.NaT)
    with capture() as events:
        client.identify("u1", {"seen": pandas.Timestamp("2024-01-01 12:00", tz="Europe/Paris")})
    assert events[0]["traits"] == {"seen": "2024-01-01T12:00:00+01:00"}
    with capture() as events:
        client.identify("u1", {"seen": pandas.Timestamp("2024-01-02T03:04:05.000000500")})
    assert events[0]["traits"] == {"seen": "2024-01-02T03:04:05.000000500"}


def test_a_lazy_event_a_before_send_hook_returns_is_taken_as_a_caller_s(
    translations: None,
) -> None:
    hooked = Client("key", send=False, before_send=lambda m: {**m, "event": lazystr("Paid")})
    with capture() as events:
        hooked.track("u1", "Order Paid")
    assert [e["event"] for e in events] == ["Paid"]
