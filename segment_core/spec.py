"""The Segment Spec's rules, shared by the client and the collector.

The client refuses a message exactly when `validate_message` finds a reason, as
the collector marks it bad, because both ask this module. `validate_message`
never raises: whatever JSON value it gets, it returns a list of human-readable
reasons, each naming the field at fault. An empty list means "good". The
collector also marks bad what `reserved_field_problems` finds (reserved traits of
another type than the Spec's), which Segment takes and the client sends as given.
`MAX_NESTING_DEPTH` is how deep a message may nest: the client refuses deeper
ones and the collector rejects them at ingest, so it never stores what it cannot
serve back.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import ipaddress
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CONTEXT_OBJECTS",
    "MAX_MESSAGE_ID_LENGTH",
    "MAX_NESTING_DEPTH",
    "MESSAGE_TYPES",
    "content_problems",
    "fromisoformat",
    "is_ip_address",
    "is_iso8601",
    "json_type",
    "parse_iso8601",
    "reserved_field_problems",
    "too_deep",
    "validate_message",
]

MESSAGE_TYPES = ("alias", "group", "identify", "page", "screen", "track")
MAX_MESSAGE_ID_LENGTH = 100
#: Objects and arrays nested in one message, the message itself counting as 1.
#: Far beyond real data, and far below what JSON libraries refuse to write
#: (orjson: 255), so a stored message can always be served inside a response.
MAX_NESTING_DEPTH = 64

# Date, "T", hours and minutes, optional seconds and fraction, optional zone.
_ISO8601 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(?:[Zz]|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,  # digits 0-9: "٢٠٢٤" is no year
)

# Fields that, when present and not null, must be JSON objects.
_OBJECT_FIELDS = ("context", "integrations", "properties", "traits")
# Fields that, when present and not null, must be strings.
_STRING_FIELDS = ("name", "category")
_TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "sentAt")

# Reserved context keys and the JSON type each must have.
#: The context's fields that hold an object (the fields of Go's ``Context`` of a struct type).
CONTEXT_OBJECTS = (
    "app",
    "campaign",
    "consent",
    "device",
    "library",
    "location",
    "network",
    "os",
    "page",
    "referrer",
    "screen",
    "traits",
    "userAgentData",
)
_CONTEXT_STRINGS = ("ip", "locale", "timezone", "userAgent", "channel")
# Reserved string sub-fields of some context objects.
_CONTEXT_SUBSTRINGS = {
    "library": ("name", "version"),
    "os": ("name", "version"),
    "page": ("path", "referrer", "search", "title", "url"),
    "campaign": ("name", "source", "medium", "term", "content"),
}
_DESCRIPTIONS: dict[Any, str] = {Mapping: "an object", str: "a string", bool: "a boolean"}
_CONTEXT_TYPES: dict[str, Any] = {
    **dict.fromkeys(CONTEXT_OBJECTS, Mapping),
    **dict.fromkeys(_CONTEXT_STRINGS, str),
    "active": bool,
    "groupId": object,
}
# The context fields whose string value needs a closer look: ip, and those of another type.
_STRING_SUSPECTS = frozenset(
    {"ip", *(field for field, kind in _CONTEXT_TYPES.items() if kind not in (str, object))}
)
_PAGE_PROPERTIES = ("name", "path", "referrer", "search", "title", "url")
#: Lazy text's classes, by module: Django's ``Promise`` (``gettext_lazy``,
#: ``TextChoices.label``), Flask-Babel's ``LazyString``, Babel's ``LazyProxy``
#: (Flask-BabelEx, Flask-Security). It is sent as its text: a string field takes it.
LAZY_TEXT_CLASSES = (
    ("django.utils.functional", "Promise"),
    ("flask_babel.speaklater", "LazyString"),
    ("babel.support", "LazyProxy"),
)
# The type of every value of an object that no string rule can fault.
_ONLY_STRINGS = frozenset({str})


def validate_message(message: object) -> list[str]:
    """Return why `message` breaks the Segment Spec; an empty list if it does not.

    >>> validate_message({"type": "track", "userId": "u1", "messageId": "m1"})
    ['event is required for a track call']
    """
    if not isinstance(message, Mapping):
        return [f"the message must be a JSON object, got {json_type(message)}"]
    reasons: list[str] = []
    kind = message.get("type")
    if kind is None:
        reasons.append("type is required")
    elif not isinstance(kind, str):
        reasons.append(f"type must be a string, got {json_type(kind)}")
        kind = None  # compared with the types below: a value whose == fails is none
    elif kind not in MESSAGE_TYPES:
        reasons.append(f"type {_show(kind)} is not one of {', '.join(MESSAGE_TYPES)}")
    _check_message_id(message, reasons)
    _check_identity(message, kind, reasons)
    _check_call_fields(message, kind, reasons)
    for field in _OBJECT_FIELDS:
        _check_optional(message, field, Mapping, "an object", reasons)
    for field in _STRING_FIELDS:
        _check_optional(message, field, str, "a string", reasons)
    for field in _TIMESTAMP_FIELDS:
        _check_timestamp(message, field, reasons)
    _check_contents(message, kind, reasons)
    return reasons


def too_deep(value: object, where: str, limit: int = MAX_NESTING_DEPTH) -> str | None:
    """The path of the first object or array nested deeper than `limit`, if any.

    `value` itself is at depth 1. The walk stops at the limit, so it is bounded
    whatever it is given.
    """
    return _too_deep(value, where, limit)


def _too_deep(value: object, where: str, remaining: int) -> str | None:
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    if remaining <= 0:
        return where
    for key, item in items:
        if isinstance(item, Mapping | list | tuple):
            path = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
            found = _too_deep(item, path, remaining - 1)
            if found is not None:
                return found
    return None


def content_problems(message: Mapping[str, Any], *, context_checked: bool = False) -> list[str]:
    """The Spec rules on what a caller puts inside a message the client built.

    The client builds the envelope (type, ids, messageId, timestamp, event name)
    itself and checks it as it goes; this covers the rest (integrations, context,
    page properties), with the same reasons `validate_message` gives.
    ``context_checked``: the context is known to pass (its check is skipped).
    """
    reasons: list[str] = []
    _check_contents(message, message.get("type"), reasons, context_checked)
    return reasons


def _check_contents(
    message: Mapping[str, Any], kind: object, reasons: list[str], context_checked: bool = False
) -> None:
    integrations = message.get("integrations")
    if integrations is not None:
        _check_integrations(integrations, reasons)
    if not context_checked:
        _check_context(message.get("context"), reasons)
    if kind == "page":
        _check_page_properties(message.get("properties"), reasons)


def is_iso8601(value: object) -> bool:
    """True for an ISO-8601 date-time string with a valid calendar date and time."""
    return isinstance(value, str) and parse_iso8601(value) is not None


def parse_iso8601(text: str) -> _dt.datetime | None:
    """The date-time an ISO-8601 string the Spec accepts names; None for any other.

    The form the collector holds every message to: a calendar date, ``T``, hours and
    minutes, optional seconds with any number of fraction digits (Go and Java write
    nanoseconds), and ``Z`` or an offset with or without a colon. Naive when the
    string has neither an offset nor ``Z``. A call's ``timestamp`` may be written in
    more forms (see :data:`fromisoformat`); the client sends it in this one. None too
    for a time whose offset takes it outside years 1 to 9999 in UTC, as the client
    refuses it.
    """
    when = _read_iso8601(text)
    return None if when is None or _outside_utc_years(when) else when


def _outside_utc_years(when: _dt.datetime) -> bool:
    """Whether ``when``'s offset takes it outside years 1 to 9999 once in UTC."""
    if when.tzinfo is None or when.year not in (1, 9999):
        return False
    try:
        when.astimezone(_dt.timezone.utc)
    except OverflowError:
        return True
    return False


def _read_iso8601(text: str) -> _dt.datetime | None:
    """:func:`parse_iso8601` without the bound of years in UTC."""
    match = _ISO8601.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = match.groups()
    zone = _dt.timezone.utc if text[-1] in "Zz" else None
    if sign is not None:
        if int(zone_h) > 23 or int(zone_m) > 59:
            return None
        offset = _dt.timedelta(hours=int(zone_h), minutes=int(zone_m))
        zone = _dt.timezone(-offset if sign == "-" else offset)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return _dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone
        )
    except ValueError:
        return None


# A UTC offset's fraction of a second, at the end of the text.
_OFFSET_FRACTION = re.compile(r"([+-])[0-9]{2}:?[0-9]{2}:?[0-9]{2}[.,]([0-9]{1,6})\Z")


def _backported_fromisoformat(text: str) -> _dt.datetime:
    """Python 3.10: the backport of 3.11's reader, with the fraction of a second of a
    UTC offset it reads and then drops (``+01:00:30.5``) put back."""
    parse = importlib.import_module("backports.datetime_fromisoformat").datetime_fromisoformat
    when: _dt.datetime = parse(text)
    found = _OFFSET_FRACTION.search(text)
    offset = when.utcoffset()
    if found is None or offset is None or offset.microseconds:
        return when
    fraction = _dt.timedelta(microseconds=int(found[2].ljust(6, "0")))
    return when.replace(
        tzinfo=_dt.timezone(offset - fraction if found[1] == "-" else offset + fraction)
    )


#: ``datetime.fromisoformat`` as Python 3.11 to 3.13 read a string, on every supported
#: Python: a call's ``timestamp`` is taken or refused alike on each (Python 3.10's
#: reads fewer forms; there, the backport of 3.11's, a dependency on 3.10 only).
fromisoformat: Callable[[str], _dt.datetime] = (
    _dt.datetime.fromisoformat if sys.version_info >= (3, 11) else _backported_fromisoformat
)


def _check_message_id(message: Mapping[str, Any], reasons: list[str]) -> None:
    message_id = message.get("messageId")
    if message_id is None:
        reasons.append("messageId is required")
    elif not isinstance(message_id, str):
        reasons.append(f"messageId must be a string, got {json_type(message_id)}")
    elif not message_id:
        reasons.append("messageId must not be empty")
    elif len(message_id) > MAX_MESSAGE_ID_LENGTH:
        reasons.append(
            f"messageId is {len(message_id)} characters long; the limit is {MAX_MESSAGE_ID_LENGTH}"
        )


def _check_identity(message: Mapping[str, Any], kind: object, reasons: list[str]) -> None:
    if kind == "alias":
        for field in ("userId", "previousId"):
            if _is_missing(message.get(field)):
                reasons.append(f"{field} is required for an alias call")
            else:
                _check_id(message, field, reasons)
        _check_id(message, "anonymousId", reasons)
        return
    for field in ("userId", "anonymousId"):
        _check_id(message, field, reasons)
    if _is_missing(message.get("userId")) and _is_missing(message.get("anonymousId")):
        reasons.append("userId or anonymousId is required")


def _check_call_fields(message: Mapping[str, Any], kind: object, reasons: list[str]) -> None:
    if kind == "track":
        event = message.get("event")
        if event is None:
            reasons.append("event is required for a track call")
        elif not _is_text(event):
            reasons.append(f"event must be a string, got {json_type(event)}")
        elif not event.strip():
            reasons.append("event must not be empty")
    elif kind == "group":
        if _is_missing(message.get("groupId")):
            reasons.append("groupId is required for a group call")
        else:
            _check_id(message, "groupId", reasons)


def is_lazy_text(value: object) -> bool:
    """Whether ``value`` is lazy text (see :data:`LAZY_TEXT_CLASSES`), sent as its text."""
    for module_name, class_name in LAZY_TEXT_CLASSES:
        module = sys.modules.get(module_name)
        lazy_class = getattr(module, class_name, None) if module is not None else None
        if isinstance(lazy_class, type) and isinstance(value, lazy_class):
            return True
    return False


def _is_text(value: object) -> bool:
    """Whether ``value`` is sent as a JSON string: a ``str``, or lazy text."""
    return isinstance(value, str) or is_lazy_text(value)


def _as_text(value: object) -> object:
    """``value``, or lazy text's text (as it is sent; lazy text whose ``str()``
    fails is left as it is, refused as it is encoded)."""
    if isinstance(value, str) or not is_lazy_text(value):
        return value
    try:
        return str.__str__(str(value))
    except Exception:
        return value


def _check_id(
    message: Mapping[str, Any], field: str, reasons: list[str], *, prefix: str = ""
) -> None:
    value = message.get(field)
    if value is None or isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        reasons.append(f"{prefix}{field} must be a string or a number, got {json_type(value)}")


def _check_optional(
    container: Mapping[str, Any],
    field: str,
    expected: type,
    description: str,
    reasons: list[str],
    *,
    prefix: str = "",
) -> None:
    value = container.get(field)
    if value is not None and not isinstance(value, expected):
        if expected is str and is_lazy_text(value):
            return
        reasons.append(f"{prefix}{field} must be {description}, got {json_type(value)}")


def _check_timestamp(message: Mapping[str, Any], field: str, reasons: list[str]) -> None:
    value = message.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        reasons.append(f"{field} must be an ISO-8601 string, got {json_type(value)}")
    elif parse_iso8601(value) is None:
        when = _read_iso8601(value)
        if when is None:
            reasons.append(f"{field} {_show(value)} is not an ISO-8601 date-time")
        else:
            reasons.append(f"{field} {_show(value)} falls outside years 1 to 9999 in UTC")


def _check_integrations(integrations: object, reasons: list[str]) -> None:
    if not isinstance(integrations, Mapping):
        return
    for name, flag in integrations.items():
        if not isinstance(flag, bool | Mapping):
            reasons.append(
                f"{path_to('integrations', name)} must be a boolean or an object, "
                f"got {json_type(flag)}"
            )


def _check_context(context: object, reasons: list[str]) -> None:
    if not isinstance(context, Mapping):
        return
    # Walk the keys present (a handful) rather than every reserved name: this
    # runs on every call of the client. Plain strings and objects of strings
    # (nearly every context) pass with a type test and a set lookup each.
    for field, value in context.items():
        kind = type(value)
        if kind is str:
            if field not in _STRING_SUSPECTS or (field == "ip" and is_ip_address(value)):
                continue
        elif (
            kind is dict
            and field in _CONTEXT_SUBSTRINGS
            and _ONLY_STRINGS.issuperset(map(type, value.values()))
        ):
            continue  # no reserved sub-field can be wrong: every value is a string
        _check_context_field(context, field, value, reasons)


def _check_context_field(
    context: Mapping[str, Any], field: str, value: object, reasons: list[str]
) -> None:
    expected = _CONTEXT_TYPES.get(field)
    if expected is None or value is None:
        return
    if expected is str:
        value = _as_text(value)
    elif expected is Mapping and isinstance(value, Mapping) and type(value) is not dict:
        try:  # any mapping is an object: read as the encoder reads it
            from segment_core.jsonvalues import storage_holds_it  # it imports this module

            if isinstance(value, dict) and storage_holds_it(value):
                value = dict(dict.items(value))  # a QueryDict's, a MultiDict's lists
            else:
                value = dict(value.items())
        except Exception as error:
            reasons.append(
                f"context.{field}: the {type_name(value)} could not be read "
                f"({type_name(error)}: {error})"
            )
            return
    if expected is str and is_lazy_text(value):  # its str() failed
        reasons.append(f"context.{field}: lazy text ({type_name(value)}) whose str() failed")
        return
    if not isinstance(value, expected):
        description = _DESCRIPTIONS[expected]
        reasons.append(f"context.{field} must be {description}, got {json_type(value)}")
    elif field in _CONTEXT_SUBSTRINGS:
        assert isinstance(value, Mapping)
        for sub in _CONTEXT_SUBSTRINGS[field]:
            text = value.get(sub)
            if text is not None and not _is_text(text):
                reasons.append(f"context.{field}.{sub} must be a string, got {json_type(text)}")
    elif field == "ip" and isinstance(value, str) and not is_ip_address(str.__str__(value)):
        reasons.append(f"context.ip {_show(value)} is not an IP address")
    elif field == "groupId":
        _check_id(context, "groupId", reasons, prefix="context.")
    elif field == "consent":
        _check_consent(value, reasons)


@functools.lru_cache(maxsize=1024)
def is_ip_address(text: str) -> bool:
    """True for an IPv4 or IPv6 address written as text."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_consent(consent: object, reasons: list[str]) -> None:
    if not isinstance(consent, Mapping):
        return
    preferences = consent.get("categoryPreferences")
    if preferences is None:
        return
    if not isinstance(preferences, Mapping):
        reasons.append(
            f"context.consent.categoryPreferences must be an object, got {json_type(preferences)}"
        )
        return
    for category, allowed in preferences.items():
        if not isinstance(allowed, bool):
            reasons.append(
                f"{path_to('context.consent.categoryPreferences', category)} must be a boolean, "
                f"got {json_type(allowed)}"
            )


def _check_page_properties(properties: object, reasons: list[str]) -> None:
    if not isinstance(properties, Mapping):
        return
    get = properties.get
    if not _ONLY_STRINGS.issuperset(map(type, properties.values())):
        for field in _PAGE_PROPERTIES:
            _check_optional(properties, field, str, "a string", reasons, prefix="properties.")
    search = _as_text(get("search"))
    if isinstance(search, str) and search and not search.startswith("?"):
        reasons.append(f"properties.search {_show(search)} must start with '?'")
    url = _as_text(get("url"))
    if isinstance(url, str) and "#" in url:
        reasons.append(f"properties.url {_show(url)} must not include a #fragment")


#: The reserved traits that hold text (SPEC.md).
_TRAIT_STRINGS = (
    "avatar",
    "description",
    "email",
    "firstName",
    "gender",
    "lastName",
    "name",
    "phone",
    "title",
    "username",
    "website",
)
#: The reserved traits that hold a date: an ISO-8601 date, or date and time.
_TRAIT_DATES = ("birthday", "createdAt")
#: The reserved traits that hold an object, and the fields of it that hold text.
_TRAIT_OBJECTS = {
    "address": ("city", "country", "postalCode", "state", "street"),
    "company": ("name", "industry", "plan"),
}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def reserved_field_problems(message: object) -> list[str]:
    """Why the reserved traits (of an identify, a group, ``context.traits``) or a
    page's ``keywords`` in ``message`` are not of the type the Spec gives them; an
    empty list if they are.

    The forms Segment's own documents use count as right: an ``address`` or a
    ``company`` written as text (the Salesforce destination's ``company:
    "Initech"``), an ``age`` as a numeric string, a ``createdAt`` or ``birthday`` as
    a Unix time. The collector marks a message with another form bad, and still
    relays it (``--forward``): Segment takes it. The client sends it as given, as
    analytics-python does: it is the caller's data, which a destination may read
    wrong, not a message Segment refuses. Never raises.

    >>> reserved_field_problems({"type": "identify", "traits": {"age": "thirty"}})
    ["traits.age must be a number, got 'thirty'"]
    """
    if not isinstance(message, Mapping):
        return []
    reasons: list[str] = []
    kind = message.get("type")
    if not isinstance(kind, str):  # compared below: a value whose == fails is none
        kind = None
    if kind in ("identify", "group"):
        _check_traits(message.get("traits"), "traits.", reasons)
    context = message.get("context")
    if isinstance(context, Mapping):
        _check_traits(context.get("traits"), "context.traits.", reasons)
    properties = message.get("properties")
    if kind == "page" and isinstance(properties, Mapping):
        keywords = properties.get("keywords")
        if keywords is None:
            pass
        elif not isinstance(keywords, list):
            reasons.append(
                f"properties.keywords must be an array of strings, got {json_type(keywords)}"
            )
        else:
            for index, word in enumerate(keywords):
                if not _is_text(word):
                    reasons.append(
                        f"properties.keywords[{index}] must be a string, got {json_type(word)}"
                    )
                    break
    return reasons


def _check_traits(traits: object, prefix: str, reasons: list[str]) -> None:
    if not isinstance(traits, Mapping):
        return
    for field in _TRAIT_STRINGS:
        _check_optional(traits, field, str, "a string", reasons, prefix=prefix)
    # An id, as the message's own ids: a string or a number.
    trait_id = traits.get("id")
    if trait_id is not None and not (_is_number(trait_id) or isinstance(trait_id, str)):
        reasons.append(f"{prefix}id must be a string or a number, got {json_type(trait_id)}")
    age = traits.get("age")
    if age is not None and not (_is_number(age) or _is_numeric_text(age)):
        shown = _show(age) if isinstance(age, str) else json_type(age)
        reasons.append(f"{prefix}age must be a number, got {shown}")
    for field in _TRAIT_DATES:
        value = traits.get(field)
        if value is None or _is_number(value):  # a Unix time
            continue
        if not isinstance(value, str):
            reasons.append(
                f"{prefix}{field} must be an ISO-8601 date or date-time (or a Unix time), "
                f"got {json_type(value)}"
            )
        elif not _is_iso_date(value):
            reasons.append(f"{prefix}{field} {_show(value)} is not an ISO-8601 date or date-time")
    for field, texts in _TRAIT_OBJECTS.items():
        value = traits.get(field)
        if value is None or isinstance(value, str):  # written as text: Segment's docs do
            continue
        if not isinstance(value, Mapping):
            reasons.append(f"{prefix}{field} must be an object (or text), got {json_type(value)}")
            continue
        for text in texts:
            _check_optional(value, text, str, "a string", reasons, prefix=f"{prefix}{field}.")
        employees = value.get("employee_count")
        if field == "company" and employees is not None and not _is_number(employees):
            reasons.append(
                f"{prefix}company.employee_count must be a number, got {json_type(employees)}"
            )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_numeric_text(value: object) -> bool:
    """A number written as text in plain decimal digits: ``"41"``, ``"41.5"``."""
    return isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value) is not None


def _is_iso_date(text: str) -> bool:
    """An ISO-8601 date-time the Spec accepts, or a calendar date (``1990-05-17``)."""
    if parse_iso8601(text) is not None:
        return True
    if _ISO_DATE.fullmatch(text) is None:
        return False
    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_missing(value: object) -> bool:
    # ``isinstance`` first: a value whose ``==`` answers no bool (pandas' NA) is there.
    return value is None or (isinstance(value, str) and value == "")


def json_type(value: object) -> str:
    """What JSON calls ``value``'s type (``"number"``, ``"array"``...), for an error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return qualified_type_name(value)


def type_name(value: object) -> str:
    """The name of ``value``'s type (``"object"`` if it has none that is text)."""
    name = getattr(type(value), "__name__", None)
    return name if isinstance(name, str) else "object"


def qualified_type_name(value: object) -> str:
    """``numpy.bool`` rather than ``bool``: a refused type that shares a name with
    an accepted one must not read as that one."""
    module = getattr(type(value), "__module__", None)
    name = type_name(value)
    return name if module == "builtins" or not isinstance(module, str) else f"{module}.{name}"


#: The longest key an error's path shows whole.
_PATH_KEY_SHOWN = 60


def path_to(where: str, key: object) -> str:
    """The path of ``key`` in the object at ``where``, for an error: a long key (a URL
    or a search text as a key) cut, so the message stays short whatever the data.

    >>> path_to("message.properties", "k" * 100)
    'message.properties.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…(100 characters)'
    """
    try:
        text = str.__str__(key) if isinstance(key, str) else str(key)
    except Exception:  # a key whose own str() fails: shown by its type
        text = f"<{type_name(key)}>"
    if len(text) > _PATH_KEY_SHOWN:
        text = f"{text[:40]}…({len(text)} characters)"
    return f"{where}.{text}" if where else text


def _show(value: str, limit: int = 60) -> str:
    """Quote a user-supplied string for a reason, cut to a readable length."""
    text = str.__str__(value)  # a subclass's own repr may say anything, or raise
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown)
