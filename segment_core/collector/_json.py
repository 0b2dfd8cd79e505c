"""JSON for the collector: orjson, and every digit of integers beyond 64 bits.

orjson reads an integer beyond 64 bits as a float and refuses to write one, so a
message holding ``2**100`` (which the client sends with every digit) would be
stored as ``1.2676506002282294e+30``, and refuses to read one beyond a float's
range (``10**400``, which the client sends too). Text with a run of 19 digits or
more may hold such an integer: it is read by the standard library, which keeps
them, and a value orjson cannot write for that reason is written by the standard
library.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from segment_core.encoding import LONG_DIGITS

__all__ = ["dumps", "loads", "loads_strictly"]


def loads(data: bytes) -> Any:
    """Parse JSON as orjson does (raising ``orjson.JSONDecodeError``), long integers kept.

    Text orjson refuses that holds such a run is read by :func:`loads_strictly`
    before it is refused: orjson refuses integers beyond a float's range, and one
    of them must not lose a whole batch. (That reading keeps lone surrogates, as
    the collector's own fallback for them does.)
    """
    if LONG_DIGITS.search(data) is None:
        return orjson.loads(data)
    try:
        value = orjson.loads(data)  # every check orjson makes, first
    except orjson.JSONDecodeError as error:
        try:
            return loads_strictly(data.decode("utf-8"))
        except (ValueError, RecursionError):
            raise error from None  # orjson's words: they say where
    try:
        return loads_strictly(data.decode("utf-8"))
    except (ValueError, RecursionError):  # what orjson accepted: never, in practice
        return value


def loads_strictly(text: str) -> Any:
    """The standard library's parse, refusing what JSON has not (``NaN``, ``1e999``).

    Raises ``ValueError`` (or ``RecursionError``); integers keep every digit.
    """
    return json.loads(text, parse_constant=_refuse, parse_float=_finite)


def dumps(value: Any) -> bytes:
    """``orjson.dumps(value)``; integers beyond 64 bits written with every digit."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as error:
        if "64-bit" not in str(error):
            raise
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: refused as orjson refuses it
            raise orjson.JSONEncodeError("str is not valid UTF-8: surrogates not allowed") from None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number
