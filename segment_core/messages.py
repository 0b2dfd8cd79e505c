"""Typed messages, as in Segment's Go library: one dataclass per call type.

>>> from segment_core import Properties, Track
>>> properties = Properties().set("plan", "pro")
>>> client.enqueue(Track(event="Signed Up", user_id="42", properties=properties))
... # doctest: +SKIP

Every field is given by name, as in Go's struct literals.

Fields are snake_case; they encode to the Spec's camelCase names. ``Context``
inlines ``extra`` into the encoded object; a dataclass in one of its object fields
encodes as Go's structs with ``omitempty`` do: camelCase names, unset (None)
fields left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from segment_core.errors import InvalidMessage
from segment_core.jsonvalues import read_dict
from segment_core.spec import CONTEXT_OBJECTS, MAX_NESTING_DEPTH, path_to

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["Alias", "Context", "Group", "Identify", "Message", "Page", "Screen", "Track"]

Timestamp = dt.datetime | str | None
MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
#: An object of the context: a dict, or a dataclass (as Go's ``PageInfo``).
ContextObject: TypeAlias = "Mapping[str, Any] | DataclassInstance"


def camel_case(name: str) -> str:
    """A snake_case field name as the Spec writes it.

    >>> camel_case("advertising_id"), camel_case("ad_tracking_enabled")
    ('advertisingId', 'adTrackingEnabled')
    """
    head, *rest = name.split("_")
    # Not str.title(), which also capitalises after digits ("x_64bit": "x64Bit").
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def struct_fields(
    value: DataclassInstance, where: str, name_of: Callable[[str], str] = camel_case
) -> dict[str, Any]:
    """A dataclass as Go writes a struct whose fields are all ``omitempty``.

    Its fields are named by ``name_of`` and those that are None left out, so an
    unset field overwrites nothing (a ``default_context``'s ``app.name``).
    Dataclasses within it, in its lists and dicts too, are written the same way.
    Raises :class:`InvalidMessage` naming ``where`` for one nested without end.
    """
    out: dict[str, Any] = _struct_item(value, where, name_of, 1, set())
    return out


def _struct_item(
    item: Any, where: str, name_of: Callable[[str], str], depth: int, inside: set[int]
) -> Any:
    """``item`` written; ``inside``: the ids of the containers it is within."""
    kind = type(item)
    # Only the plain containers: a subclass (a QueryDict) is written as the encoder
    # writes it anywhere else.
    if kind is dict:
        items: Any = item.items()
    elif kind is list or kind is tuple:
        items = enumerate(item)
    elif is_dataclass(item) and not isinstance(item, type):
        items = _named_fields(item, where, name_of)
    else:
        return item
    if id(item) in inside:  # in the words the encoder has for it
        raise InvalidMessage(f"{where}: a circular reference (the value contains itself)")
    if depth > MAX_NESTING_DEPTH:
        raise InvalidMessage(
            f"{where}: nested more than {MAX_NESTING_DEPTH} levels deep (objects and arrays)"
        )
    inside.add(id(item))
    written: Any
    if kind is list or kind is tuple:
        written = [
            _struct_item(value, f"{where}[{index}]", name_of, depth + 1, inside)
            for index, value in items
        ]
    else:
        written = {
            key: _struct_item(value, path_to(where, key), name_of, depth + 1, inside)
            for key, value in items
            if value is not None or kind is dict  # a dict's own None values are kept
        }
    inside.discard(id(item))
    return written


def _named_fields(
    item: DataclassInstance, where: str, name_of: Callable[[str], str]
) -> list[tuple[str, Any]]:
    """The public fields of ``item`` (a ``_name`` is the object's own business, as
    the encoder has it anywhere else) by their written names; InvalidMessage for
    two written the same (``user_id`` and ``userId``)."""
    named: dict[str, str] = {}
    items: list[tuple[str, Any]] = []
    for f in fields(item):
        if f.name.startswith("_"):
            continue
        name = name_of(f.name)
        if name in named:
            raise InvalidMessage(
                f"{where}: the fields {named[name]!r} and {f.name!r} are both {name!r} in JSON"
            )
        named[name] = f.name
        try:
            value = getattr(item, f.name)
        except Exception as error:  # a field never set, a descriptor that raises
            from segment_core.jsonvalues import error_text

            raise InvalidMessage(
                f"{where}.{f.name}: the field could not be read ({error_text(error)})"
            ) from None
        items.append((name, value))
    return items


def context_object(value: object, where: str) -> object:
    """A value of one of the context's object fields as it is written: a dataclass
    (Go's ``PageInfo``, ``DeviceInfo``, ...) as :func:`struct_fields` writes it, a
    mapping as a dict of its own, anything else as it is."""
    if isinstance(value, Mapping):
        return read_dict(value, where)
    if is_dataclass(value) and not isinstance(value, type):
        return struct_fields(value, where)
    return value


def with_context_structs(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """A dict ``context`` whose object fields (``device``, ``page``, ...) hold
    dataclasses, with them written as in a typed :class:`Context`; None when none does.

    Dataclasses under other keys stay as they are: written as their fields, as
    anywhere else in a message.
    """
    structs = {
        key: context_object(value, f"context.{key}")
        for key, value in context.items()
        if key in CONTEXT_OBJECTS and is_dataclass(value) and not isinstance(value, type)
    }
    return {**context, **structs} if structs else None


@dataclass(kw_only=True)
class Context:
    """The Spec's ``context`` object; ``extra`` holds keys the Spec does not name."""

    active: bool | None = None
    app: ContextObject | None = None
    campaign: ContextObject | None = None
    channel: str | None = None
    consent: ContextObject | None = None
    device: ContextObject | None = None
    direct: bool | None = None
    group_id: str | None = None
    ip: str | None = None
    library: ContextObject | None = None
    locale: str | None = None
    location: ContextObject | None = None
    network: ContextObject | None = None
    os: ContextObject | None = None
    page: ContextObject | None = None
    referrer: ContextObject | None = None
    screen: ContextObject | None = None
    timezone: str | None = None
    traits: ContextObject | None = None
    user_agent: str | None = None
    user_agent_data: ContextObject | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The encoded form: camelCase keys, unset fields left out, ``extra`` inlined."""
        if not isinstance(self.extra, Mapping):
            raise InvalidMessage(f"context.extra must be a dict, got {type(self.extra).__name__}")
        out: dict[str, Any] = read_dict(self.extra, "context.extra")
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            name = camel_case(f.name)
            out[name] = context_object(value, f"context.{name}")
        return out


ContextLike = Context | Mapping[str, Any] | None


@dataclass(kw_only=True)
class _Common:
    user_id: str | int | None = None
    anonymous_id: str | int | None = None
    context: ContextLike = None
    integrations: Mapping[str, Any] | None = None
    timestamp: Timestamp = None
    message_id: str | None = None

    type: ClassVar[MessageType]

    def common_kwargs(self) -> dict[str, Any]:
        context = self.context.to_dict() if isinstance(self.context, Context) else self.context
        return {
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
            "context": context,
            "integrations": self.integrations,
            "timestamp": self.timestamp,
            "message_id": self.message_id,
        }

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the client method of the same name."""
        raise NotImplementedError


@dataclass(kw_only=True)
class Track(_Common):
    event: str = ""
    properties: Mapping[str, Any] | None = None
    type: ClassVar[MessageType] = "track"

    def call_kwargs(self) -> dict[str, Any]:
        return {**self.common_kwargs(), "event": self.event, "properties": self.properties}


@dataclass(kw_only=True)
class Identify(_Common):
    traits: Mapping[str, Any] | None = None
    type: ClassVar[MessageType] = "identify"

    def call_kwargs(self) -> dict[str, Any]:
        return {**self.common_kwargs(), "traits": self.traits}


@dataclass(kw_only=True)
class Page(_Common):
    name: str | None = None
    category: str | None = None
    properties: Mapping[str, Any] | None = None
    type: ClassVar[MessageType] = "page"

    def call_kwargs(self) -> dict[str, Any]:
        return {
            **self.common_kwargs(),
            "name": self.name,
            "category": self.category,
            "properties": self.properties,
        }


@dataclass(kw_only=True)
class Screen(Page):
    type: ClassVar[MessageType] = "screen"


@dataclass(kw_only=True)
class Group(_Common):
    group_id: str | int | None = None
    traits: Mapping[str, Any] | None = None
    type: ClassVar[MessageType] = "group"

    def call_kwargs(self) -> dict[str, Any]:
        return {**self.common_kwargs(), "group_id": self.group_id, "traits": self.traits}


@dataclass(kw_only=True)
class Alias(_Common):
    previous_id: str | int | None = None
    type: ClassVar[MessageType] = "alias"

    def call_kwargs(self) -> dict[str, Any]:
        kwargs = self.common_kwargs()
        if kwargs.pop("anonymous_id") is not None:
            raise InvalidMessage("anonymous_id: an alias takes previous_id and user_id instead")
        return {**kwargs, "previous_id": self.previous_id}


Message = Track | Identify | Page | Screen | Group | Alias
