"""Typed messages, as in Segment's Go library: one dataclass per call type.

>>> properties = Properties().set("plan", "pro")
>>> client.enqueue(Track(event="Signed Up", user_id="42", properties=properties))
... # doctest: +SKIP

Every field is given by name, as in Go's struct literals.

Fields are snake_case; they encode to the Spec's camelCase names. ``Context``
inlines ``extra`` into the encoded object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from segment_core.errors import InvalidMessage

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["Alias", "Context", "Group", "Identify", "Message", "Page", "Screen", "Track"]

Timestamp = dt.datetime | str | None
MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
#: An object of the context: a dict, or a dataclass (as Go's ``PageInfo``).
ContextObject: TypeAlias = "Mapping[str, Any] | DataclassInstance"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(kw_only=True)
class Context:
    """The Spec's ``context`` object; ``extra`` holds keys the Spec does not name."""

    active: bool | None = None
    app: ContextObject | None = None
    campaign: ContextObject | None = None
    channel: str | None = None
    consent: ContextObject | None = None
    device: ContextObject | None = None
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
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, Mapping):
                value = dict(value)
            elif is_dataclass(value) and not isinstance(value, type):
                # Go's PageInfo, DeviceInfo, ... as dataclasses: their fields, as the
                # builders take them.
                value = asdict(value)
            out[_camel(f.name)] = value
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
