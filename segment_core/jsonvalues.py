"""Turn any value a caller may send into plain JSON values, or say which one cannot be.

The checked path of :func:`segment_core.encoding.encode`: it runs when the fast
encoder fails or may have written something wrong, and always when orjson is
missing, so both encoders refuse the same values with the same message:

* NaN and infinities (``float`` or ``Decimal``): JSON has no such numbers;
* integers too long to write as text (over 4,000 digits; Python refuses them),
  ``Decimal`` integers included, and ``Decimal`` fractions beyond a float's range;
* datetimes and times whose ``tzinfo`` gives no offset (it raises, or returns
  something other than a ``timedelta`` within a day): no ISO-8601 text for them;
* circular references, and nesting deeper than the Spec limit;
* mapping keys that are not text-like, or that collide once written as text
  (``{1: ..., "1": ...}``);
* lazy text whose ``str()`` raises (a translation asked for outside a request);
* values of any other type;
* text holding a lone surrogate (half of a UTF-16 pair), which UTF-8 cannot
  encode: :func:`replace_lone_surrogates` finds it once an encoder has failed.

Numbers of other libraries (numpy's scalars, ``fractions.Fraction``: any
``numbers.Integral`` or ``numbers.Real``) and numpy's ``bool`` become the ``int``,
``float`` or ``bool`` they stand for. ``str`` subclasses (``enum.StrEnum``, Django's
``SafeString``) become plain ``str``, and so does lazy text (:func:`lazy_text`:
Django's ``gettext_lazy``, Flask-Babel's ``lazy_gettext``). A datetime that is no
date (pandas' ``NaT``) is refused. Error messages show values through
:func:`describe`: briefly, whatever they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import numbers
import operator
import re
import reprlib
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from segment_core.errors import InvalidMessage, is_interruption
from segment_core.spec import (
    MAX_NESTING_DEPTH,
    is_lazy_text,
    path_to,
    qualified_type_name,
    type_name,
)

__all__ = [
    "MAX_INTEGER_BITS",
    "copy_json",
    "date_problem",
    "date_text",
    "decimal_number",
    "describe",
    "fast_encodable",
    "flat_json",
    "integer_problem",
    "lazy_text",
    "lone_surrogate_problem",
    "plain",
    "read_dict",
    "read_list",
    "replace_lone_surrogates",
    "short_repr",
    "utc_offset",
]

#: About 4,000 decimal digits: Python refuses to write longer integers as text.
MAX_INTEGER_BITS = 13_000
#: The digits of 2 ** MAX_INTEGER_BITS: an integer with more has too many bits.
_MAX_INTEGER_DIGITS = math.floor(MAX_INTEGER_BITS * math.log10(2)) + 1

_DATES = (dt.datetime, dt.date, dt.time)
#: Lazy text, by the module and name of its class: a translation made when the
#: value is read as text. Looked up in ``sys.modules``, so no framework is imported.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: A batch body holds its messages two levels down; deeper text is not looked at
#: (a message that deep is refused for its nesting anyway).
_TEXT_DEPTH = MAX_NESTING_DEPTH + 2
#: What an error message shows of a value: a few items, a few levels, a few
#: dozen characters; a message is for reading, not a copy of the data.
_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxdict = _SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = _SHORT.maxfrozenset = 4
_SHORT.maxstring = _SHORT.maxlong = _SHORT.maxother = 40
_SHORT_LENGTH = 60


def copy_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``value`` whose dicts and lists are its own, all the way down.

    For values checked already (no cycles, bounded depth): a client's defaults,
    copied into each message so that a change to one message changes no other.
    """
    return {key: _copy_item(item) for key, item in value.items()}


def storage_holds_it(value: dict[Any, Any]) -> bool:
    """Whether a dict subclass's own storage holds what it says it holds, as a
    ``QueryDict``'s does (its lists); a view of other dicts (Werkzeug's
    ``CombinedMultiDict``, ``request.values``) keeps nothing there: it is read
    through its ``items()``."""
    if type(value).__len__ is dict.__len__:
        return True
    try:
        return dict.__len__(value) == len(value)
    except Exception:  # a length that cannot be read: its storage, as orjson writes it
        return True


def _copy_item(value: Any) -> Any:
    # A dict subclass (a QueryDict) as its storage, as plain() reads it; type(), not
    # isinstance(): a proxy (Werkzeug's LocalProxy, Django's SimpleLazyObject) passes
    # isinstance() and has no dict's storage.
    if issubclass(type(value), dict) and storage_holds_it(value):
        return {key: _copy_item(item) for key, item in dict.items(value)}
    if isinstance(value, (list, tuple)):
        return [_copy_item(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _copy_item(item) for key, item in value.items()}
    return value


def plain(value: Any, where: str = "message") -> Any:
    """``value`` as dicts with ``str`` keys, lists, ``str``, numbers, ``bool``, ``None``.

    Datetimes, dates and times become their text (:func:`date_text`); UUIDs are
    kept: both encoders write them the same way. Raises :class:`InvalidMessage`
    naming the path of the first value at fault.
    """
    return _plain(value, where, 1, set())


def _plain(value: Any, where: str, depth: int, open_ids: set[int]) -> Any:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    # Before any isinstance(), which reads a proxy's __class__, and so its object.
    if _proxy_reader(kind) is not None:
        return _plain(proxied_or_refused(value, where), where, depth, open_ids)
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, _DATES):
        try:
            return date_text(value)
        except ValueError as error:
            raise InvalidMessage(f"{where}: {error}") from None
    if isinstance(value, enum.Enum):
        return _plain(_enum_value(value, where), where, depth, open_ids)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        problem = integer_problem(value)
        if problem is not None:
            raise InvalidMessage(f"{where}: {problem}")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMessage(f"{where}: {float.__repr__(value)} is not a number JSON can hold")
        return float(value)
    if isinstance(value, decimal.Decimal):
        try:
            number = decimal_number(value)
        except ValueError as error:
            raise InvalidMessage(f"{where}: {error}") from None
        return _plain(number, where, depth, open_ids)  # an integer's bits are checked there
    if isinstance(value, (bytes, bytearray)):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise InvalidMessage(f"{where}: bytes that are not UTF-8 text") from None
    other = _other_number(value, where)
    if other is not None:
        return _plain(other, where, depth, open_ids)
    fielded = dataclasses.is_dataclass(value) and not isinstance(value, type)
    if not fielded and not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        try:
            text = lazy_text(value)
        except ValueError as error:
            raise InvalidMessage(f"{where}: {error}") from None
        if text is None:
            raise InvalidMessage(
                f"{where}: a value of type {qualified_type_name(value)} cannot be encoded as JSON"
            )
        return text
    if id(value) in open_ids:
        raise InvalidMessage(f"{where}: a circular reference (the value contains itself)")
    if depth > MAX_NESTING_DEPTH:
        raise InvalidMessage(
            f"{where}: nested more than {MAX_NESTING_DEPTH} levels deep (objects and arrays)"
        )
    open_ids.add(id(value))
    try:
        if fielded:
            return _plain_fields(value, where, depth, open_ids)
        if isinstance(value, Mapping):
            return _plain_mapping(value, where, depth, open_ids)
        items = value if kind is list or kind is tuple else _read(list, value, where, "a list")
        return [
            _plain(item, f"{where}[{index}]", depth + 1, open_ids)
            for index, item in enumerate(items)
        ]
    finally:
        open_ids.discard(id(value))


def read_dict(value: Mapping[Any, Any], where: str) -> dict[Any, Any]:
    """``dict(value)`` (a dict subclass's storage, as below the top of a message: a
    list per key for a ``QueryDict``); an :class:`InvalidMessage` naming ``where``
    when the mapping's own code fails (a session whose backend is gone)."""
    return cast("dict[Any, Any]", _read(dict, value, where, "a dict"))


def read_list(value: Iterable[Any], where: str) -> list[Any]:
    """``list(value)``; an :class:`InvalidMessage` naming ``where`` when the iterable's
    own code fails (a generator that raises part way)."""
    return cast("list[Any]", _read(list, value, where, "a list"))


def _read(read: Callable[[Any], Any], value: Any, where: str, what: str) -> Any:
    """``read(value)``; an :class:`InvalidMessage` naming ``where`` when the value's
    own code raises (a mapping whose backend is gone)."""
    try:
        return read(value)
    except Exception as error:
        if is_interruption(error):
            raise
        raise InvalidMessage(
            f"{where}: the {type_name(value)} could not be read as {what} ({error_text(error)})"
        ) from None


def _other_number(value: Any, where: str) -> int | float | bool | None:
    """The ``int``, ``float`` or ``bool`` a number of another library stands for
    (numpy's scalars, a ``Fraction``), or None for any other value.

    Integers keep every digit (``operator.index``); other real numbers are
    written as floats, which JSON numbers are. numpy's ``bool`` is no number to
    Python's ABCs, so it is recognised by its module and name.
    """
    if isinstance(value, (int, float)):  # Python's own, which the caller judges
        return None
    if isinstance(value, numbers.Integral):
        return cast(int, _read(operator.index, value, where, "an integer"))
    if isinstance(value, numbers.Real):
        return cast(float, _read(float, value, where, "a number"))
    kind = type(value)
    if kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"):
        return cast(bool, _read(bool, value, where, "a boolean"))
    return None


def _enum_value(value: enum.Enum, where: str) -> Any:
    return _read(_member_value, value, where, "its value")


def _member_value(member: enum.Enum) -> Any:
    """An enum member's value (read through its own descriptor, which may raise)."""
    return member.value


def proxied(value: Any) -> Any:
    """The object a lazy proxy stands for, read now: Werkzeug's ``LocalProxy``
    (Flask-Login's ``current_user``) and Django's ``LazyObject`` (``SimpleLazyObject``,
    ``request.user``), which pass ``isinstance()`` as that object and are none of
    its type to code that reads it as such; ``value`` itself for any other. Raises
    ``ValueError`` saying why when the proxy cannot be read (a ``LocalProxy`` outside
    its context)."""
    reader = _proxy_reader(type(value))
    if reader is None:
        return value
    try:
        return reader(value)
    except Exception as error:
        if is_interruption(error):
            raise
        raise ValueError(
            f"the {type_name(value)} could not be read ({error_text(error)})"
        ) from None


def without_proxies(value: Any, where: str) -> Any:
    """``value`` with the lazy proxies it holds in its dicts and lists, at any depth,
    read (see :func:`proxied`); ``value`` itself when it holds none. Raises
    :class:`InvalidMessage` naming the path of one that cannot be read. For a
    caller's context and integrations, which the Spec's checks read by type. A value
    that holds itself, or one nested too deep, is left for those checks to refuse."""
    return _without_proxies(value, where, 1, set())


def _without_proxies(value: Any, where: str, depth: int, open_ids: set[int]) -> Any:
    kind = type(value)
    if _proxy_reader(kind) is not None:
        return _without_proxies(proxied_or_refused(value, where), where, depth, open_ids)
    if (kind is not dict and kind is not list) or depth > MAX_NESTING_DEPTH:
        return value
    if id(value) in open_ids:  # it holds itself: refused as such later
        return value
    open_ids.add(id(value))
    try:
        if kind is dict:
            changed = {}
            for key, item in value.items():
                read = _without_proxies(item, path_to(where, key), depth + 1, open_ids)
                if read is not item:
                    changed[key] = read
            return {**value, **changed} if changed else value
        items = [
            _without_proxies(item, f"{where}[{index}]", depth + 1, open_ids)
            for index, item in enumerate(value)
        ]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    finally:
        open_ids.discard(id(value))


def proxied_or_refused(value: Any, where: str) -> Any:
    """:func:`proxied`, refused with an :class:`InvalidMessage` naming ``where`` when
    the proxy cannot be read."""
    try:
        return proxied(value)
    except ValueError as error:
        raise InvalidMessage(f"{where}: {error}") from None


#: The reader of each type asked about (None: no proxy), kept for the first types.
_PROXY_READERS: dict[type, Callable[[Any], Any] | None] = {}


def _proxy_reader(kind: type) -> Callable[[Any], Any] | None:
    """How to read what a proxy of type ``kind`` stands for; None for no proxy."""
    try:
        return _PROXY_READERS[kind]
    except KeyError:
        pass
    reader = None
    for klass in getattr(kind, "__mro__", ()):
        module = getattr(klass, "__module__", None) or ""
        if klass.__name__ == "LocalProxy" and module.startswith("werkzeug"):
            reader = _read_local_proxy
        elif klass.__name__ == "LazyObject" and module == "django.utils.functional":
            reader = _read_lazy_object
        else:
            continue
        break
    if len(_PROXY_READERS) < 1024:  # types made at run time are not kept forever
        _PROXY_READERS[kind] = reader
    return reader


def _read_local_proxy(value: Any) -> Any:
    return object.__getattribute__(value, "_get_current_object")()


def _read_lazy_object(value: Any) -> Any:
    state = object.__getattribute__(value, "__dict__")
    functional = sys.modules.get("django.utils.functional")
    if functional is not None and state.get("_wrapped") is getattr(functional, "empty", None):
        type(value)._setup(value)
    return state.get("_wrapped")


def lazy_text(value: object) -> str | None:
    """``str(value)`` as a plain ``str`` when ``value`` is lazy text, else None.

    Lazy text is Django's ``Promise`` (``gettext_lazy``, ``TextChoices.label``),
    Flask-Babel's ``LazyString`` or Babel's ``LazyProxy``: it stands for a
    translation, and becomes text when read as such. For values of no known type
    only: it looks each class up. Raises ``ValueError`` when ``str()`` raises.
    """
    if not is_lazy_text(value):
        return None
    try:
        text = str(value)
    except Exception as error:
        raise ValueError(
            f"lazy text ({type_name(value)}) whose str() failed ({error_text(error)})"
        ) from None
    return str.__str__(text)  # a lazy SafeString, say: sent as plain text


def integer_problem(value: int) -> str | None:
    """Why ``value`` cannot be written as JSON text (too long), or ``None``."""
    bits = value.bit_length()
    if bits <= MAX_INTEGER_BITS:
        return None
    return (
        f"the integer has {bits} bits, out of range (at most {MAX_INTEGER_BITS}); "
        "send it as a string"
    )


def decimal_number(value: decimal.Decimal) -> int | float:
    """The JSON number ``value`` is written as: an integer with every digit, else a float.

    Raises ``ValueError`` saying why there is none: NaN and infinities, integers
    of more digits than :data:`MAX_INTEGER_BITS` allow (told by the exponent, as
    ``int(Decimal("1e1000000"))`` takes seconds), fractions beyond a float's range.
    (An integer of up to that many digits may still have too many bits:
    :func:`integer_problem`.)
    """
    if not value.is_finite():
        raise ValueError(f"Decimal {short_repr(str(value))} is not a number JSON can hold")
    if value == value.to_integral_value():
        if value.is_zero():  # 0E+1000000: an exponent, no digits
            return 0
        digits = value.adjusted() + 1
        if digits > _MAX_INTEGER_DIGITS:
            raise ValueError(
                f"the integer has {digits} digits, out of range (at most {MAX_INTEGER_BITS} "
                "bits); send it as a string"
            )
        return int(value)
    number = float(value)
    if number - number != 0.0:  # inf - inf is NaN
        raise ValueError(
            f"Decimal {short_repr(str(value))} is not an integer, and beyond the range of a float"
        )
    return number


def utc_offset(value: dt.datetime | dt.time) -> dt.timedelta | None:
    """``value.utcoffset()``, or ``ValueError`` when its tzinfo gives no usable offset.

    The tzinfo is the caller's code: it may raise, or return something other than
    a ``timedelta`` within a day (Python refuses those).
    """
    try:
        return value.utcoffset()
    except Exception as error:
        raise ValueError(_no_offset(value, error)) from None


def date_text(value: dt.date | dt.time) -> str:
    """A datetime, date or time as the ISO-8601 text both encoders write.

    A naive datetime (no tzinfo, or one that gives no offset) is written as it is,
    without a zone, as analytics-python and Django's ``DjangoJSONEncoder`` write it:
    it may be local time (Django with ``USE_TZ = False``), which a ``Z`` would make
    wrong by the local offset. A datetime at UTC ends in ``Z``; else it keeps its
    offset in hours and minutes, or, when its offset has seconds (which RFC 3339
    cannot write), it is written in UTC. Raises ``ValueError`` when its tzinfo
    gives no usable offset (:func:`utc_offset`), when one written in UTC falls
    outside years 1 to 9999 there (one written with its offset is valid ISO-8601
    text whatever year it is in UTC), or when it is no date (:func:`date_problem`).

    >>> date_text(dt.datetime(2024, 5, 1, 12, 30)), date_text(dt.date(2024, 5, 1))
    ('2024-05-01T12:30:00', '2024-05-01')
    """
    if isinstance(value, dt.datetime):
        if type(value) is dt.datetime:
            return _datetime_text(value)
        _check_date(value)
        nanoseconds = _nanoseconds(value)
        if nanoseconds:  # pandas' Timestamp: its own digits, as its isoformat() writes
            return _with_nanoseconds(_datetime_text(value), nanoseconds)
        return _datetime_text(value)
    if isinstance(value, dt.time):
        return dt.time.isoformat(value) if value.tzinfo is None else _time_text(value)
    if type(value) is not dt.date:
        _check_date(value)
    return dt.date.isoformat(value)


def _datetime_text(value: dt.datetime) -> str:
    if value.tzinfo is None:
        return dt.datetime.isoformat(value)
    text = _iso_text(value)
    if text[-6] in "+-":  # it ends with an offset of whole minutes: "+05:30"
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    offset = utc_offset(value)
    if offset is None:  # naive all the same: written without an offset
        return text
    return _utc_text(value, offset)  # an offset with seconds: rare


def _nanoseconds(value: dt.datetime) -> int:
    """The nanoseconds past the microsecond of a datetime that keeps them (pandas'
    ``Timestamp``), or 0."""
    try:
        nanoseconds = getattr(value, "nanosecond", 0)
    except Exception:  # a subclass's own attribute may raise
        return 0
    return nanoseconds if type(nanoseconds) is int and 0 < nanoseconds < 1000 else 0


def _with_nanoseconds(text: str, nanoseconds: int) -> str:
    """``text``, a datetime's ISO-8601 text, with three more digits of its seconds."""
    head, rest = text[:19], text[19:]  # "YYYY-MM-DDTHH:MM:SS", then ".ffffff" and a zone
    fraction = rest[1:7] if rest[:1] == "." else "000000"
    return f"{head}.{fraction}{nanoseconds:03d}{rest[7:] if rest[:1] == '.' else rest}"


def date_problem(value: dt.date) -> str | None:
    """Why ``value``, a ``date`` or ``datetime`` subclass, stands for no date, or None.

    pandas' ``NaT`` ("not a time", a missing value) is a datetime whose fields
    are NaN and which equals nothing, itself included; written from its fields,
    it would read as the real date 0001-01-01.
    """
    try:
        real = isinstance(value.year, int) and bool(value == value)
    except Exception:  # a subclass's own fields or comparison may raise
        real = False
    if real:
        return None
    return f"{describe(value)} is not a date (a missing value, such as pandas' NaT)"


def _check_date(value: dt.date) -> None:
    problem = date_problem(value)
    if problem is not None:
        raise ValueError(problem)


def _iso_text(value: dt.datetime | dt.time) -> str:
    # isoformat() asks the tzinfo for its offset, and checks the answer.
    try:
        if isinstance(value, dt.datetime):
            return dt.datetime.isoformat(value)
        return dt.time.isoformat(value)
    except Exception as error:
        raise ValueError(_no_offset(value, error)) from None


def _time_text(value: dt.time) -> str:
    """A time with a tzinfo: its offset in hours and minutes. A time has no date to
    move to UTC with, so one whose offset has seconds, which ISO-8601 and RFC 3339
    cannot write, raises ``ValueError``."""
    text = _iso_text(value)
    offset = value.utcoffset()  # isoformat() asked it already: it answers
    if offset is None or not (offset.seconds % 60 or offset.microseconds):
        return text
    shown = f"{'-' if offset < dt.timedelta(0) else '+'}{abs(offset)}"
    raise ValueError(
        f"the time's UTC offset {shown} has seconds, which ISO-8601 cannot write: "
        "give it an offset in whole minutes, or send a datetime"
    )


def _utc_text(value: dt.datetime, offset: dt.timedelta) -> str:
    try:
        clock = value.replace(tzinfo=None) - offset
    except OverflowError:
        raise ValueError("the datetime falls outside years 1 to 9999 in UTC") from None
    return dt.datetime.isoformat(clock) + "Z"


def _no_offset(value: dt.datetime | dt.time, error: Exception) -> str:
    kind = "datetime" if isinstance(value, dt.datetime) else "time"
    return (
        f"the {kind}'s tzinfo {type_name(value.tzinfo)} gives no usable UTC offset "
        f"({error_text(error)})"
    )


def short_repr(value: object) -> str:
    """``repr(value)`` cut short: a few items and levels, at most about 60 characters.

    Never raises: a value whose ``repr`` fails is shown by its type.

    >>> short_repr(list(range(100))), short_repr("x" * 100)
    ('[0, 1, 2, 3, ...]', "'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'")
    """
    try:
        text = _SHORT.repr(value)
    except Exception:  # a repr that raises, however deep
        return f"<{type_name(value)} whose repr failed>"
    if len(text) > _SHORT_LENGTH:  # a repr that ignores the limits (a class's own)
        text = text[: _SHORT_LENGTH - 3] + "..."
    return text


def describe(value: object) -> str:
    """``value`` for an error message: what it is, briefly, whatever its size; never raises.

    Text is quoted when short and counted when long; anything else is its type
    and :func:`short_repr`.

    >>> describe("  "), describe("x" * 100), describe({"cart": [1, 2]})
    ("'  '", 'a string of 100 characters', "dict {'cart': [1, 2]}")
    """
    if issubclass(type(value), str):  # not a proxy of one: its repr says what it is
        text = cast(str, value)
        if len(text) > _SHORT.maxstring:
            return f"a string of {len(text)} characters"
        return repr(str.__str__(text))  # a subclass's own repr may say anything
    return f"{type_name(value)} {short_repr(value)}"


def error_text(error: BaseException) -> str:
    """``RuntimeError: tz database not loaded``, cut short; never raises."""
    try:
        text = str(error)
    except Exception:
        text = ""
    if len(text) > _SHORT_LENGTH * 2:
        text = text[: _SHORT_LENGTH * 2 - 3] + "..."
    return f"{type_name(error)}: {text}" if text else type_name(error)


def replace_lone_surrogates(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with each lone surrogate of its strings and keys replaced by U+FFFD.

    A lone surrogate is half of a UTF-16 pair (a string cut inside an emoji); UTF-8
    cannot encode it. Appends to ``found`` what was replaced, path first (``where``,
    then ``.key`` and ``[index]``; ``where=""`` starts the path at the first key).
    Dicts and lists are walked, other values kept; nothing is copied when nothing
    is replaced. For error paths only: it looks at every string.

    For ``{"name": "x\\ud83d"}`` and ``where="message"``: ``{"name": "x\\ufffd"}``,
    and ``found`` gets ``"message.name: the text holds a lone surrogate ..."``.
    """
    return _replace_surrogates(value, where, found, _TEXT_DEPTH)


def _replace_surrogates(value: Any, where: str, found: list[str], depth: int) -> Any:
    if isinstance(value, str):
        match = _LONE_SURROGATE.search(value)
        if match is None:
            return value
        found.append(f"{where or 'message'}: {_surrogate_problem(match.group())}")
        return _LONE_SURROGATE.sub("\ufffd", value)
    if depth <= 0:
        return value
    if isinstance(value, list):
        items = [
            _replace_surrogates(item, f"{where}[{index}]", found, depth - 1)
            for index, item in enumerate(value)
        ]
        same = all(new is old for new, old in zip(items, value, strict=True))
        return value if same else items
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    changed = False
    for key, item in value.items():
        text = key
        if isinstance(key, str):
            match = _LONE_SURROGATE.search(key)
            if match is not None:
                found.append(
                    f"{where or 'message'} key {short_repr(key)}: "
                    + _surrogate_problem(match.group())
                )
                text = _LONE_SURROGATE.sub("\ufffd", key)
        path = path_to(where, text)
        new = _replace_surrogates(item, path, found, depth - 1)
        changed = changed or text is not key or new is not item
        out[text] = new
    return out if changed else value


def lone_surrogate_problem(text: str) -> str | None:
    """Why ``text`` cannot be written as UTF-8 (its first lone surrogate); None if it can."""
    match = _LONE_SURROGATE.search(text)
    return None if match is None else _surrogate_problem(match.group())


def _surrogate_problem(surrogate: str) -> str:
    return (
        f"the text holds a lone surrogate {surrogate!r} (half of a UTF-16 pair), "
        "which UTF-8 cannot encode"
    )


def flat_json(values: dict[str, Any]) -> bool:
    """True when every value of ``values`` is JSON's own and holds no other value.

    That is a ``str``, an ``int``, a ``bool``, ``None`` or a finite ``float``, of
    exactly those types: each is written as it is, none can be too deep or not a
    number. (Keys are the encoder's to check.)

    >>> flat_json({"plan": "pro", "seats": 3, "price": 9.5, "trial": False})
    True
    >>> flat_json({"price": float("nan")}), flat_json({"items": []})
    (False, False)
    """
    for value in values.values():
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is not float or value - value != 0.0:  # NaN - NaN and inf - inf are NaN
            return False
    return True


def fast_encodable(value: Any, depth: int) -> bool:
    """True when ``value`` may go to orjson as it is: no NaN, no nesting too deep.

    False when ``value`` holds a NaN or an infinity (orjson writes them as null),
    or objects and arrays nested deeper than the nesting limit. The depth is
    checked here, before orjson runs: orjson bounds the nesting of lists and
    dicts but not of tuples, and writes past its buffer for a tuple nested a few
    hundred deep, which kills the process. ``depth`` is the level of ``value``
    (the message is level 1), counted as :func:`plain` counts; a value that holds
    itself ends at the limit too. Other types are left to orjson, which refuses
    those it cannot write as :func:`plain` does (see ``encoding._default``).

    It runs on every message with more than flat properties or traits, so the
    common types are tested first, in a plain loop per container.
    """
    kind = type(value)
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return _other_fast_encodable(value, depth)
    if depth > MAX_NESTING_DEPTH:
        return False
    depth += 1
    for item in items:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if item - item != 0.0:  # NaN - NaN and inf - inf are NaN
                return False
        elif not fast_encodable(item, depth):
            return False
    return True


def _other_fast_encodable(item: Any, depth: int) -> bool:
    """:func:`fast_encodable` for what orjson writes of the rarer types."""
    if _proxy_reader(type(item)) is not None:  # read by the checked path
        return False
    if isinstance(item, float):
        return math.isfinite(item)
    if isinstance(item, enum.Enum):  # written as its value, at its own level
        try:
            value = item.value
        except Exception:  # its own code failed: the checked path says so
            return False
        return fast_encodable([value], depth - 1)
    # Containers as orjson writes them: a dict or list subclass as its storage,
    # a set as a list (see encoding._default). A dataclass goes to the checked path:
    # orjson writes its __dict__ (attributes that are no fields included, a slotted
    # parent's fields left out), the checked path its fields, whatever else the
    # message holds.
    kind = type(item)
    if issubclass(kind, dict):
        if not storage_holds_it(item):  # orjson would write its empty storage
            return False
        items: list[Any] = list(dict.values(item))
    elif issubclass(kind, list):
        items = list(list.__iter__(item))
    elif issubclass(kind, tuple):
        items = list(tuple.__iter__(item))
    elif isinstance(item, (dict, list, tuple)):
        # A proxy of one (Werkzeug's LocalProxy, Django's SimpleLazyObject): orjson
        # cannot write it; the checked path reads it as its code sees it.
        return False
    elif isinstance(item, (set, frozenset)):
        items = list(item)
    else:  # text, numbers, dates, UUIDs, bytes, or for encoding._default to judge
        return not (dataclasses.is_dataclass(item) and not isinstance(item, type))
    return fast_encodable(items, depth)


def _plain_mapping(
    value: Mapping[Any, Any], where: str, depth: int, open_ids: set[int]
) -> dict[str, Any]:
    # A dict subclass below the top is read as orjson writes it: its storage (a
    # QueryDict's lists, not its items()), so both paths write it alike; the top
    # (properties, traits, context) was read through items() when the call was made.
    # type(), not isinstance(): a proxy of a dict (Werkzeug's LocalProxy) passes
    # isinstance() and has no dict's storage.
    as_dict = cast("dict[Any, Any]", value)
    storage = depth > 1 and issubclass(type(value), dict) and storage_holds_it(as_dict)
    if storage or type(value) is dict:
        pairs: Iterable[tuple[Any, Any]] = dict.items(as_dict)
    else:  # the mapping's own code, which may raise
        pairs = _read(lambda mapping: list(mapping.items()), value, where, "a dict")
    out: dict[str, Any] = {}
    originals: dict[str, Any] = {}
    for key, item in pairs:
        text = _key_text(key, where)
        if text in out:
            raise InvalidMessage(
                f"{where}: the keys {short_repr(originals[text])} and {short_repr(key)} are "
                f"both {short_repr(text)} in JSON"
            )
        originals[text] = key
        out[text] = _plain(item, path_to(where, text), depth + 1, open_ids)
    return out


def _plain_fields(value: Any, where: str, depth: int, open_ids: set[int]) -> dict[str, Any]:
    """A dataclass instance as orjson writes one: its fields, but those whose names
    start with ``_`` (the object's own business). Each is read, not copied: a field
    may hold what cannot be copied (a lock, a connection) or the instance itself."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        name = field.name
        if name.startswith("_"):
            continue
        try:
            item = getattr(value, name)
        except Exception as error:  # a field never set, a descriptor that raises
            raise InvalidMessage(
                f"{where}.{name}: the field could not be read ({error_text(error)})"
            ) from None
        out[name] = _plain(item, f"{where}.{name}", depth + 1, open_ids)
    return out


def _key_text(key: Any, where: str) -> str:
    """A mapping key as JSON writes it (as orjson's OPT_NON_STR_KEYS would)."""
    if type(key) is str:
        return key
    while _proxy_reader(type(key)) is not None:  # a proxy of a proxy, too
        key = proxied_or_refused(key, f"{where} key")
    if isinstance(key, enum.Enum):
        key = _enum_value(key, f"{where} key")
    if isinstance(key, str):
        return str.__str__(key)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        problem = integer_problem(key)
        if problem is not None:
            raise InvalidMessage(f"{where} key: {problem}")
        return str(int(key))
    if isinstance(key, float) and math.isfinite(key):
        return repr(float(key))
    if isinstance(key, uuid.UUID):
        return str(key)
    if isinstance(key, _DATES):
        try:
            return date_text(key)
        except ValueError as error:
            raise InvalidMessage(f"{where} key: {error}") from None
    if isinstance(key, decimal.Decimal) and key.is_finite():
        try:  # the number a Decimal value is written as, then as a key of that type
            return _key_text(decimal_number(key), where)
        except ValueError as error:
            raise InvalidMessage(f"{where} key: {error}") from None
    number = _other_number(key, f"{where} key")
    if number is not None:  # numpy's, written as the number it stands for
        return _key_text(number, where)
    try:
        text = lazy_text(key)
    except ValueError as error:
        raise InvalidMessage(f"{where} key: {error}") from None
    if text is not None:
        return text
    if isinstance(key, (float, decimal.Decimal)):  # the finite ones were taken above
        problem = "NaN and infinities cannot be keys (JSON has no such numbers)"
    else:
        problem = f"a key of type {qualified_type_name(key)} cannot be used"
    raise InvalidMessage(f"{where} key {short_repr(key)}: {problem}")
