"""The request-bound ``Analytics`` object, kept in a context variable.

Adapters bind one per request (exposed as ``request.analytics``); code anywhere
below the view reaches it with :func:`analytics`::

    from segment_core.scope import analytics

    analytics().track("Order Completed", {"revenue": 42})

Outside a request, :func:`analytics` returns an object bound to the default
client and no user: pass ``user_id=`` (or ``anonymous_id=``) to each call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from segment_core.errors import InvalidMessage
from segment_core.normalize import stringify_id

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["Analytics", "analytics", "bind", "bound", "current", "merge_context", "reset"]

Result = tuple[bool, dict[str, Any]]

_current: ContextVar[Analytics | None] = ContextVar("segment_core.analytics", default=None)


class Analytics:
    """Segment calls on behalf of one visitor: ids and request context filled in.

    ``kw`` of every call goes to the client (``timestamp``, ``integrations``,
    ``message_id``, ``category`` for page/screen, ``user_id``/``anonymous_id`` to
    override the bound ids); a ``context`` given there is merged over the bound one.

    >>> a = Analytics(user_id=7, anonymous_id="a1", context={"ip": "1.2.3.4"})
    >>> a.user_id, a.anonymous_id
    ('7', 'a1')
    """

    __slots__ = ("_client", "anonymous_id", "context", "page_message", "user_id")

    def __init__(
        self,
        client: Client | None = None,
        *,
        user_id: object = None,
        anonymous_id: object = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self.user_id = stringify_id("user_id", user_id)
        self.anonymous_id = stringify_id("anonymous_id", anonymous_id)
        self.context: dict[str, Any] = dict(context or {})
        #: The message of this object's page call (explicit or automatic), if any:
        #: adapters skip their automatic page call when a view made one.
        self.page_message: dict[str, Any] | None = None

    @property
    def client(self) -> Client:
        """The bound client, or the process-wide default one."""
        if self._client is not None:
            return self._client
        from segment_core import get_client

        return get_client()

    def track(self, event: str, properties: Mapping[str, Any] | None = None, **kw: Any) -> Result:
        """Record that the visitor did ``event``."""
        return self._send("track", kw, event=event, properties=properties)

    def identify(
        self, user_id: object = None, traits: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """Say who the visitor is; later calls in this request use ``user_id``."""
        if user_id is not None:
            kw["user_id"] = user_id
        result = self._send("identify", kw, traits=traits)
        if user_id is not None:
            self.user_id = stringify_id("user_id", user_id)
        return result

    def page(
        self, name: str | None = None, properties: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """Record a page view (``category=`` in ``kw``), instead of the automatic one."""
        result = self._send("page", kw, name=name, properties=properties)
        self.page_message = result[1]
        return result

    def screen(
        self, name: str | None = None, properties: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """Record a screen view (``category=`` in ``kw``)."""
        return self._send("screen", kw, name=name, properties=properties)

    def group(self, group_id: object, traits: Mapping[str, Any] | None = None, **kw: Any) -> Result:
        """Associate the visitor with the group ``group_id``."""
        return self._send("group", kw, group_id=group_id, traits=traits)

    def alias(self, user_id: object, previous_id: object = None, **kw: Any) -> Result:
        """Merge ``previous_id`` (default: the anonymous id) into ``user_id``.

        Later calls in this request use ``user_id``.
        """
        previous = previous_id if previous_id is not None else self.anonymous_id or self.user_id
        if previous is None:
            raise InvalidMessage(
                "alias needs previous_id: there is no anonymous id outside a request"
            )
        context = merge_context(self.context, kw.pop("context", None))
        result = self.client.alias(previous_id=previous, user_id=user_id, context=context, **kw)
        self.user_id = stringify_id("user_id", user_id)
        return result

    def consent(self, preferences: Mapping[str, bool] | None = None, /, **categories: bool) -> None:
        """Set ``context.consent.categoryPreferences`` on the calls that follow.

        >>> a = Analytics(anonymous_id="a1")
        >>> a.consent({"Advertising": False}, Analytics=True)
        >>> a.context["consent"]
        {'categoryPreferences': {'Advertising': False, 'Analytics': True}}
        """
        self.context["consent"] = {"categoryPreferences": {**(preferences or {}), **categories}}

    def _send(self, kind: str, kw: dict[str, Any], **fields: Any) -> Result:
        user_id = kw.pop("user_id", self.user_id)
        anonymous_id = kw.pop("anonymous_id", self.anonymous_id)
        if user_id is None and anonymous_id is None:
            raise InvalidMessage(
                f"{kind} needs a user_id or an anonymous_id: outside a request, pass one, "
                f"e.g. analytics().{kind}(..., user_id=user.pk)"
            )
        context = merge_context(self.context, kw.pop("context", None))
        call = getattr(self.client, kind)
        result: Result = call(
            user_id=user_id, anonymous_id=anonymous_id, context=context, **fields, **kw
        )
        return result

    def __repr__(self) -> str:
        return f"<Analytics user_id={self.user_id!r} anonymous_id={self.anonymous_id!r}>"


def merge_context(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra`` over ``base``, one level deep (``page``, ``campaign`` ... merge by key)."""
    merged = dict(base)
    for key, value in (extra or {}).items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = {**below, **value}
        else:
            merged[key] = value
    return merged


def current() -> Analytics | None:
    """The object bound to the current request, if any."""
    return _current.get()


def analytics() -> Analytics:
    """The current request's object; outside a request, one on the default client."""
    return _current.get() or Analytics()


def bind(obj: Analytics) -> Token[Analytics | None]:
    """Make ``obj`` the current object (adapters call this as a request starts)."""
    return _current.set(obj)


def reset(token: Token[Analytics | None]) -> None:
    """Undo :func:`bind` (as the request ends)."""
    _current.reset(token)


@contextmanager
def bound(obj: Analytics) -> Iterator[Analytics]:
    """``with bound(obj):`` binds ``obj`` for the block."""
    token = bind(obj)
    try:
        yield obj
    finally:
        reset(token)
