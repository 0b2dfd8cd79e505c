"""JSON encoding of messages: orjson when available, the stdlib otherwise.

Values beyond plain JSON are encoded the way a destination expects them:
datetimes and dates as ISO-8601 (naive datetimes without a zone, as
``isoformat()`` writes them), ``Decimal`` as a
number, ``UUID`` as a string, enums by value, bytes as UTF-8 text, lazy
translations (Django's, Flask-Babel's) as their text, sets, tuples and
dataclasses as arrays and objects. A value that cannot be encoded (see
:mod:`segment_core.jsonvalues`) raises :class:`InvalidMessage` naming where it was.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import time
import uuid
from typing import Any

from segment_core.errors import InvalidMessage
from segment_core.jsonvalues import (
    date_problem,
    date_text,
    decimal_number,
    fast_encodable,
    lazy_text,
    plain,
    replace_lone_surrogates,
    utc_offset,
)

__all__ = [
    "LONG_DIGITS",
    "decode",
    "encode",
    "encode_simple",
    "format_timestamp",
    "now_timestamp",
]

#: A run of digits long enough for an integer past 64 bits (2**63 has 19 digits),
#: which orjson reads as a float (or refuses) and the standard library keeps.
LONG_DIGITS = re.compile(rb"[0-9]{19}")

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson cannot be installed
    orjson = None  # type: ignore[assignment]


def format_timestamp(value: dt.datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``; naive datetimes are taken as UTC.

    Years before 1000 keep four digits (``0999-...``), as ISO-8601 requires. Raises
    ``OverflowError`` when the time in UTC falls outside years 1 to 9999, and
    ``ValueError`` when its tzinfo gives no usable offset (see :func:`utc_offset`)
    or when it is no date (pandas' ``NaT``: see :func:`date_problem`).
    """
    if type(value) is not dt.datetime:
        problem = date_problem(value)
        if problem is not None:
            raise ValueError(problem)
    offset = utc_offset(value) if value.tzinfo is not None else None
    if offset:  # else naive, or a tzinfo that gives no offset or a zero one: UTC already
        value -= offset  # the time in UTC (its tzinfo kept, never asked again)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


_second_prefix: tuple[int, str] = (-1, "")
#: ".000Z" to ".999Z": the end of a timestamp, looked up rather than formatted.
_MILLISECONDS = tuple(f".{millisecond:03d}Z" for millisecond in range(1000))
_time_ns = time.time_ns


def now_timestamp() -> str:
    """The current time as :func:`format_timestamp` writes it, cheaply."""
    # Formatting a whole datetime costs more than the rest of a call; the part up
    # to the second changes once a second, so it is cached (one tuple, so threads
    # always see a second and its text together).
    global _second_prefix
    milliseconds = _time_ns() // 1_000_000
    second = milliseconds // 1000
    cached = _second_prefix
    if cached[0] != second:
        cached = (second, _second_text(time.gmtime(second)))
        _second_prefix = cached
    return cached[1] + _MILLISECONDS[milliseconds - second * 1000]


def _second_text(when: time.struct_time) -> str:
    """``when`` to the second, as :func:`format_timestamp` writes it: four-digit years
    (``time.strftime("%Y")`` writes ``999`` on glibc)."""
    return (
        f"{when.tm_year:04d}-{when.tm_mon:02d}-{when.tm_mday:02d}T{when.tm_hour:02d}:"
        f"{when.tm_min:02d}:{when.tm_sec:02d}"
    )


_DATES = (dt.datetime, dt.date, dt.time)


def _default(value: Any) -> Any:
    # A ValueError sends the value to the checked path, which names its field.
    if isinstance(value, _DATES):  # orjson passes them here: see _OPTIONS
        return date_text(value)
    if isinstance(value, decimal.Decimal):
        return decimal_number(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray)):  # UTF-8 text, as analytics-python takes it
        return value.decode()  # else UnicodeDecodeError: plain() names the field
    text = lazy_text(value)  # else ValueError: plain() names the field
    if text is None:
        raise TypeError
    return text


def _stdlib_default(value: Any) -> Any:
    # Only for what plain() returned: dates are text already.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(
        value, default=_stdlib_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


if orjson is not None:
    # No OPT_NON_STR_KEYS: a key that is not a plain str takes the checked path,
    # which refuses keys that collide once written as text. Dates and times are
    # passed to _default: orjson asks a tzinfo it does not know for its offset
    # without checking the answer (one that raises kills the process), and the
    # checked path writes them with the same function.
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME

    def _dumps(value: Any) -> bytes:
        try:
            return orjson.dumps(value, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # orjson stops at 64-bit integers; the stdlib keeps every digit.
            return _stdlib_dumps(value)

    def decode(data: bytes | str) -> Any:
        """Parse JSON as a receiver does: integers past 64 bits keep every digit."""
        raw = data.encode() if isinstance(data, str) else data
        if LONG_DIGITS.search(raw) is None:
            return orjson.loads(data)
        return json.loads(data)

else:  # pragma: no cover
    _dumps = _stdlib_dumps

    def decode(data: bytes | str) -> Any:
        """Parse JSON; integers keep every digit."""
        return json.loads(data)


def _slow_encode(value: Any, where: str) -> bytes:
    """What orjson could not write, or may have written wrong: checked, then encoded."""
    plain_value = plain(value, where)
    try:
        return _dumps(plain_value)
    except (TypeError, ValueError) as exc:
        # plain() refused everything else first: what is left is text UTF-8 cannot encode.
        found: list[str] = []
        replace_lone_surrogates(plain_value, where, found)
        problem = found[0] if found else f"{where} cannot be encoded as JSON: {exc}"
        raise InvalidMessage(problem) from None


if orjson is not None:
    _orjson_dumps = orjson.dumps
    _EncodeError = orjson.JSONEncodeError

    def encode(value: Any, where: str = "message", *, numbers: Any = None) -> bytes:
        """Encode ``value`` to compact JSON bytes or raise :class:`InvalidMessage`.

        Whichever encoder runs, the same values are refused, with the path of the
        first one at fault: see :func:`segment_core.jsonvalues.plain`. ``numbers``:
        the part of ``value`` that may hold the caller's values, when the caller
        knows that nothing else does (a message's properties or traits, level 2 of
        the message); by default, all of it.
        """
        # Looked at before orjson sees it: orjson writes NaN as null, and a tuple
        # nested too deep kills the process (see jsonvalues.fast_encodable).
        if not (fast_encodable(value, 1) if numbers is None else fast_encodable(numbers, 2)):
            return _slow_encode(value, where)
        try:
            data = _orjson_dumps(value, default=_default, option=_OPTIONS)
        except _EncodeError:
            return _slow_encode(value, where)
        # orjson writes into a 4 KB buffer and shrinks it in place, which leaves
        # each small result holding the whole 4 KB. A message waits in the queue,
        # so it is kept as an exact-size copy (about 0.1 µs): ten times less memory.
        return b"".join((data, b""))

    def encode_simple(value: dict[str, Any]) -> bytes:
        """Encode a simple message, as :func:`encode` would, without its scans.

        Simple: strings, finite numbers, booleans and None in a few levels of
        dicts (see :meth:`segment_core.normalize.MessageFactory.unchecked`). Nothing
        in it can be too deep, not a number, or beyond plain JSON, so the scans
        :func:`encode` makes for those are skipped.
        """
        try:
            data = _orjson_dumps(value)
        except _EncodeError:  # a lone surrogate, an integer past 64 bits: as encode() does
            return encode(value)
        return b"".join((data, b""))  # an exact-size copy, as in encode()

else:  # pragma: no cover

    def encode_simple(value: dict[str, Any]) -> bytes:
        """Encode a simple message, as :func:`encode` would."""
        return encode(value)  # no scans to skip: the same checks and errors

    def encode(value: Any, where: str = "message", *, numbers: Any = None) -> bytes:
        """Encode ``value`` to compact JSON bytes or raise :class:`InvalidMessage`.

        Whichever encoder runs, the same values are refused, with the path of the
        first one at fault: see :func:`segment_core.jsonvalues.plain`. (``numbers``:
        as with orjson; this encoder checks every value.)
        """
        return _slow_encode(value, where)
