"""The request-bound ``Analytics`` object, kept in a context variable.

Adapters bind one per request (exposed as ``request.analytics``); code anywhere
below the view reaches it with :func:`analytics`::

    from segment_core.scope import analytics

    analytics().track("Order Completed", {"revenue": 42})

Outside a request, :func:`analytics` returns an object bound to the default
client and no user: pass ``user_id=`` (or ``anonymous_id=``) to each call.

Work that leaves the request keeps the visitor: :meth:`Analytics.snapshot` is a
small JSON value to hand to a job queue (``Analytics.from_snapshot`` rebuilds the
object), and :func:`with_binding` / :func:`start_thread` run a function in
another thread bound to the caller's visitor (:func:`with_binding` an async
function too, in another task)::

    pool.submit(with_binding(send_receipt), order.id)
    start_thread(send_receipt, order.id)
    queue.put_nowait(with_binding(send_receipt_async))
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import threading
import types
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import aclosing, contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, cast

from segment_core import _forks, lifecycle
from segment_core._clock import monotonic
from segment_core._snapshot import InvalidSnapshot, make_snapshot, read_snapshot
from segment_core.errors import InvalidMessage, MessageTooLarge
from segment_core.messages import Context
from segment_core.normalize import stringify_id
from segment_core.returned import complete
from segment_core.spec import content_problems

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = [
    "Analytics",
    "InvalidSnapshot",
    "analytics",
    "as_refused",
    "bind",
    "bound",
    "bound_async_iteration",
    "bound_iteration",
    "current",
    "current_or_found",
    "merge_context",
    "reset",
    "restore",
    "start_thread",
    "with_binding",
]

logger = logging.getLogger("segment.core")

Result = tuple[bool, dict[str, Any]]
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_current: ContextVar[Analytics | None] = ContextVar("segment_core.analytics", default=None)

#: Functions an adapter registers to find its request's object where the framework
#: runs code in the request without this module's binding (a Flask thread started
#: with ``copy_current_request_context``): asked in order, only when nothing is
#: bound; each answers an object or None.
_analytics_finders: list[Callable[[], Analytics | None]] = []


class Analytics:
    """Segment calls on behalf of one visitor: ids and request context filled in.

    ``kw`` of every call goes to the client (``timestamp``, ``integrations``,
    ``message_id``, ``category`` for page/screen, ``user_id``/``anonymous_id`` to
    override the bound ids); a ``context`` given there is merged over the bound one.

    >>> a = Analytics(user_id=7, anonymous_id="a1", context={"ip": "1.2.3.4"})
    >>> a.user_id, a.anonymous_id
    ('7', 'a1')
    """

    __slots__ = ("_client", "_page_message", "anonymous_id", "context", "user_id")

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
        self._page_message: dict[str, Any] | None = None

    @property
    def page_message(self) -> dict[str, Any] | None:
        """The message of this object's page call (explicit or automatic), if any.

        Adapters skip their automatic page call when a view made one. It has
        analytics-python's shape, as a call returns it: the automatic page call
        fills in the keys it left out only when this is read.
        """
        message = self._page_message
        return message if message is None else complete(message)

    @page_message.setter
    def page_message(self, message: dict[str, Any] | None) -> None:
        self._page_message = message

    @property
    def client(self) -> Client:
        """The bound client, or the process-wide default one."""
        if self._client is not None:
            return self._client
        from segment_core import get_client

        return get_client()

    def track(self, event: str, properties: Mapping[str, Any] | None = None, **kw: Any) -> Result:
        """Record that the visitor did ``event``."""
        user_id, anonymous_id, context = self._visitor("track", kw)
        client = self._client
        if client is None:
            client = self.client
        try:
            if kw:
                return client.track(
                    user_id, event, properties, context, anonymous_id=anonymous_id, **kw
                )
            return client.track(user_id, event, properties, context, anonymous_id=anonymous_id)
        except MessageTooLarge as error:
            context, kw = self._given_way(context, error), as_refused(kw, error)
        return client.track(user_id, event, properties, context, anonymous_id=anonymous_id, **kw)

    def identify(
        self, user_id: object = None, traits: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """Say who the visitor is; later calls in this request use ``user_id``."""
        if user_id is not None:
            kw["user_id"] = user_id
        uid, anonymous_id, context = self._visitor("identify", kw)
        try:
            result = self.client.identify(uid, traits, context, anonymous_id=anonymous_id, **kw)
        except MessageTooLarge as error:
            context, kw = self._given_way(context, error), as_refused(kw, error)
            result = self.client.identify(uid, traits, context, anonymous_id=anonymous_id, **kw)
        if user_id is not None:
            self.user_id = stringify_id("user_id", user_id)
        return result

    def page(
        self, name: str | None = None, properties: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """Record a page view (``category=`` in ``kw``), instead of the automatic one."""
        return self._page(name, properties, kw)

    def _page(
        self,
        name: str | None,
        properties: Mapping[str, Any] | None,
        kw: dict[str, Any],
        *,
        give_way: bool = True,
    ) -> Result:
        """:meth:`page`; ``give_way``: the visitor's part of the context gives way to
        a message too big (else it is refused as it is)."""
        user_id, anonymous_id, context = self._visitor("page", kw)
        client = self._client
        if client is None:
            client = self.client
        try:
            if kw:
                result = client.page(
                    user_id,
                    name=name,
                    properties=properties,
                    context=context,
                    anonymous_id=anonymous_id,
                    **kw,
                )
            else:
                result = client.page(
                    user_id,
                    name=name,
                    properties=properties,
                    context=context,
                    anonymous_id=anonymous_id,
                )
        except MessageTooLarge as error:
            if not give_way:
                raise
            result = client.page(
                user_id,
                name=name,
                properties=properties,
                context=self._given_way(context, error),
                anonymous_id=anonymous_id,
                **as_refused(kw, error),
            )
        self.page_message = result[1]
        return result

    def screen(
        self, name: str | None = None, properties: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """Record a screen view (``category=`` in ``kw``)."""
        user_id, anonymous_id, context = self._visitor("screen", kw)
        try:
            return self.client.screen(
                user_id,
                name=name,
                properties=properties,
                context=context,
                anonymous_id=anonymous_id,
                **kw,
            )
        except MessageTooLarge as error:
            context, kw = self._given_way(context, error), as_refused(kw, error)
        return self.client.screen(
            user_id,
            name=name,
            properties=properties,
            context=context,
            anonymous_id=anonymous_id,
            **kw,
        )

    def group(self, group_id: object, traits: Mapping[str, Any] | None = None, **kw: Any) -> Result:
        """Associate the visitor with the group ``group_id``."""
        user_id, anonymous_id, context = self._visitor("group", kw)
        try:
            return self.client.group(
                user_id, group_id, traits, context, anonymous_id=anonymous_id, **kw
            )
        except MessageTooLarge as error:
            context, kw = self._given_way(context, error), as_refused(kw, error)
        return self.client.group(
            user_id, group_id, traits, context, anonymous_id=anonymous_id, **kw
        )

    def alias(self, user_id: object, previous_id: object = None, **kw: Any) -> Result:
        """Merge ``previous_id`` into ``user_id``.

        ``previous_id`` defaults to the id the visitor's calls carry: its anonymous
        id, or its user id when it has none (a client the app knows by its user
        alone, such as an API client without the cookie). Later calls in this
        request use ``user_id``.
        """
        if self.anonymous_id is None and self.user_id is None:  # outside a request
            if previous_id is None:
                raise InvalidMessage(
                    "alias needs previous_id: there is no visitor's id outside a request"
                )
            context = merge_context(self.context, kw.pop("context", None))
        else:
            # The ids the visitor's calls carry: a request's visitor known by its user
            # alone has an anonymous id that no call sends, and no browser keeps.
            known_user, anonymous_id, context = self._visitor("alias", kw)
            if previous_id is None:
                previous_id = anonymous_id or known_user
        try:
            result = self.client.alias(
                previous_id=previous_id, user_id=user_id, context=context, **kw
            )
        except MessageTooLarge as error:
            context, kw = self._given_way(context, error), as_refused(kw, error)
            result = self.client.alias(
                previous_id=previous_id, user_id=user_id, context=context, **kw
            )
        self.user_id = stringify_id("user_id", user_id)
        return result

    def consent(self, preferences: Mapping[str, bool] | None = None, /, **categories: bool) -> None:
        """Set ``context.consent.categoryPreferences`` on the calls that follow.

        >>> a = Analytics(anonymous_id="a1")
        >>> a.consent({"Advertising": False}, Analytics=True)
        >>> a.context["consent"]
        {'categoryPreferences': {'Advertising': False, 'Analytics': True}}

        Raises :class:`InvalidMessage` for a category that is not a string or a
        preference that is not True or False, as every call made with it would.
        """
        self.context["consent"] = {
            "categoryPreferences": _checked_preferences(preferences, categories)
        }

    # Django's templates call a method they meet ({{ request.analytics.page }})
    # unless it alters data: none of these is called from a template.
    track.alters_data = identify.alters_data = page.alters_data = True  # type: ignore[attr-defined]
    screen.alters_data = group.alters_data = alias.alters_data = True  # type: ignore[attr-defined]
    consent.alters_data = True  # type: ignore[attr-defined]

    # -- carrying the visitor out of the request ---------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The visitor as a small JSON-serialisable dict, for a task queue or a thread.

        It holds the ids and the context worth keeping (``ip``, ``userAgent``,
        ``locale``, ``page``, ``campaign``, ``consent``); never cookies or headers.

        >>> a = Analytics(user_id=7, anonymous_id="a1", context={"ip": "1.2.3.4"})
        >>> a.snapshot()
        {'version': 1, 'userId': '7', 'anonymousId': 'a1', 'context': {'ip': '1.2.3.4'}}
        """
        return make_snapshot(*self._carried_ids(), self.context)

    @classmethod
    def from_snapshot(cls, value: object, client: Client | None = None) -> Analytics:
        """Rebuild the visitor from :meth:`snapshot` (a dict, or its JSON text).

        Raises :class:`InvalidSnapshot` (a ``ValueError``) naming the field that is
        wrong: a snapshot read from a queue is checked like any outside input.

        >>> Analytics.from_snapshot({"version": 1, "anonymousId": "a1"})
        <Analytics user_id=None anonymous_id='a1'>
        """
        user_id, anonymous_id, context = read_snapshot(value)
        return cls(client, user_id=user_id, anonymous_id=anonymous_id, context=context)

    def copy(self) -> Analytics:
        """A new object for the same visitor and client; changes to either stay apart."""
        user_id, anonymous_id = self._carried_ids()
        return Analytics(
            self._client,
            user_id=user_id,
            anonymous_id=anonymous_id,
            context={k: dict(v) if isinstance(v, dict) else v for k, v in self.context.items()},
        )

    def _carried_ids(self) -> tuple[str | None, str | None]:
        """The ids a copy or a snapshot carries: those this object's calls would send."""
        return self.user_id, self.anonymous_id

    def __copy__(self) -> Analytics:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Analytics:
        return self.copy()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its snapshot: the client (threads, sockets) stays in this
        # process; the unpickled object uses the default client of its process.
        return (_unpickle, (self.snapshot(),))

    def _given_way(self, context: dict[str, Any], error: MessageTooLarge) -> dict[str, Any]:
        """A call's ``context`` with what the visitor sent cut, so that the message
        ``error`` refused fits, or ``error`` raised: a request's object knows what
        its visitor sent (see ``RequestAnalytics``); this one cuts nothing."""
        raise error

    def _visitor(self, kind: str, kw: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        """The ids and the context of one call, taken out of its ``kw``."""
        # The bound ids are read only when the call does not give its own (reading
        # user_id may ask the framework for its user).
        user_id = kw.pop("user_id") if "user_id" in kw else self.user_id
        anonymous_id = kw.pop("anonymous_id") if "anonymous_id" in kw else self.anonymous_id
        if user_id is None and anonymous_id is None:
            raise InvalidMessage(
                f"{kind} needs a user_id or an anonymous_id: outside a request, pass one, "
                f"e.g. analytics().{kind}(..., user_id=user.pk); in a thread or task a "
                "request starts, start it with segment_core.scope.start_thread(fn, ...) or run "
                "segment_core.scope.with_binding(fn), which carry the request's visitor"
            )
        extra = kw.pop("context", None)
        context = dict(self.context) if extra is None else merge_context(self.context, extra)
        return user_id, anonymous_id, context

    def __repr__(self) -> str:
        return f"<Analytics user_id={self.user_id!r} anonymous_id={self.anonymous_id!r}>"


def _checked_preferences(preferences: object, categories: dict[str, bool]) -> dict[str, Any]:
    """:meth:`Analytics.consent`'s categories in one dict, refused as any call would refuse them."""
    merged: object = preferences
    if preferences is None or isinstance(preferences, Mapping):
        combined = {**(preferences or {}), **categories}
        for category in combined:
            if not isinstance(category, str):
                raise InvalidMessage(
                    "context.consent.categoryPreferences keys must be strings, "
                    f"got {type(category).__name__}"
                )
        merged = combined
    for problem in content_problems({"context": {"consent": {"categoryPreferences": merged}}}):
        raise InvalidMessage(problem)
    return cast(dict[str, Any], merged)


def as_refused(kw: dict[str, Any], error: MessageTooLarge) -> dict[str, Any]:
    """A call's ``kw`` for it once more, as the same message: the ``messageId`` and
    ``timestamp`` the message ``error`` refused had (what a ``before_send`` hook saw)."""
    again = dict(kw)
    if error.message_id is not None:
        again.setdefault("message_id", error.message_id)
    if error.timestamp is not None:
        again.setdefault("timestamp", error.timestamp)
    return again


def merge_context(base: Mapping[str, Any], extra: object) -> dict[str, Any]:
    """``extra`` over ``base``, one level deep (``page``, ``campaign`` ... merge by key).

    ``extra``: a mapping, a typed :class:`~segment_core.Context`, or None.
    """
    if isinstance(extra, Context):
        extra = extra.to_dict()
    elif extra is not None and not isinstance(extra, Mapping):
        raise InvalidMessage(f"context must be a dict, got {type(extra).__name__}")
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


def current_or_found() -> Analytics | None:
    """The object bound to the current request or, where nothing is bound, the
    request's object an adapter finds (in a Flask thread started with
    ``copy_current_request_context``); None outside a request.

    The visitor that work leaving the request (a task, a job, a thread) carries:
    the one :func:`analytics` acts for.
    """
    return _current.get() or _found_analytics()


def analytics() -> Analytics:
    """The current request's object; outside a request, one on the default client."""
    return _current.get() or _unbound_analytics()


def _unbound_analytics() -> Analytics:
    """What :func:`analytics` returns when nothing is bound: the request's object an
    adapter finds, else one without a visitor."""
    return _found_analytics() or Analytics()


def _found_analytics() -> Analytics | None:
    for find in _analytics_finders:
        found = find()
        if found is not None and not (_parents_requests and _of_parent(found)):
            return found
    return None


#: In a forked child, the objects of the parent's request its copy of the forking
#: thread still finds (a Flask request's context): no visitor of the child's.
_parents_requests: list[Analytics] = []


def _of_parent(found: Analytics) -> bool:
    return any(found is parents for parents in _parents_requests)


def _forget_parents_request() -> None:
    """In a forked child: the request the parent's forking thread was serving is not
    the child's. A process pool made in a view forks from the request's thread, and
    each job its processes run, another visitor's too, would otherwise run bound to
    that first request's visitor; :func:`with_binding` hands a job its own."""
    _current.set(None)
    found: list[Analytics] = []
    for find in _analytics_finders:
        try:
            obj = find()
        except Exception:  # nothing found, nothing to forget
            continue
        if obj is not None:
            found.append(obj)
    _parents_requests[:] = found


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


def _unpickle(snapshot: dict[str, Any]) -> Analytics:
    return Analytics(
        user_id=snapshot.get("userId"),
        anonymous_id=snapshot.get("anonymousId"),
        context=snapshot.get("context") or {},
    )


def restore(
    value: object, client: Client | None = None, *, source: str, quiet: bool = False
) -> Analytics | None:
    """:meth:`Analytics.from_snapshot`, for adapters: a bad snapshot is logged, not raised.

    ``source`` says where the snapshot came from (``"Celery task 'shop.tasks.x'"``),
    for the log line; ``quiet``: not logged (another process reading the same one
    says so). Returns None when ``value`` is None or cannot be read.
    """
    if value is None:
        return None
    try:
        return Analytics.from_snapshot(value, client)
    except InvalidSnapshot as exc:
        if not quiet:
            logger.warning("segment: ignoring the visitor snapshot of %s: %s", source, exc)
    except Exception:  # a hostile value must never stop the job it came with
        if not quiet:
            logger.exception("segment: could not read the visitor snapshot of %s", source)
    return None


def bound_iteration(items: Iterable[T], obj: Analytics) -> Iterator[T]:
    """``items``, each made with ``obj`` bound: a streamed response's body, made
    after the view returned, as the server sends it, is still below the view.

    Closing it closes ``items``.
    """
    iterator = iter(items)
    try:
        while True:
            # Still bound, in the framework's own context kept for the body: left so.
            token = None if _current.get() is obj else _current.set(obj)
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                if token is not None:
                    _current.reset(token)
            yield item
    finally:
        # The body's own cleanup (a generator's finally, at a visitor leaving) is
        # below the view too.
        close = getattr(iterator, "close", None)
        if close is not None:
            token = None if _current.get() is obj else _current.set(obj)
            try:
                close()
            finally:
                if token is not None:
                    _current.reset(token)


async def bound_async_iteration(items: AsyncIterable[T], obj: Analytics) -> AsyncGenerator[T, None]:
    """:func:`bound_iteration` for an async body."""
    iterator = aiter(items)
    try:
        while True:
            token = None if _current.get() is obj else _current.set(obj)
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            finally:
                if token is not None:
                    _current.reset(token)
            yield item
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            token = None if _current.get() is obj else _current.set(obj)
            try:
                await close()
            finally:
                if token is not None:
                    _current.reset(token)


def with_binding(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, run bound to the caller's visitor wherever it is called.

    The visitor is taken now (a copy: the thread's changes stay its own), so the
    wrapper can go to a thread or an executor, a process pool's included (it
    pickles when ``fn`` does, the visitor as its snapshot)::

        executor.submit(with_binding(send_receipt), order.id)
        threading.Thread(target=with_binding(send_receipt), args=(order.id,)).start()

    A generator function's generator is bound for each step and its closing, as
    it is iterated. An async function stays one, bound for the whole of each run
    (an async generator function, for each step and its closing), wherever it is
    awaited:
    a worker task, Starlette's ``BackgroundTasks``::

        jobs.put_nowait(with_binding(send_receipt))  # an async def, awaited by a worker

    Called outside a request, ``fn`` runs unbound.
    """
    obj = current_or_found()
    carried = obj.copy() if obj is not None else None
    makes = _what_calling_makes(fn)
    if makes == "result" or (makes == "generator" and carried is None):
        return _BoundCall(fn, carried)
    if carried is None:
        return fn
    if makes == "generator":
        generator_function = cast("Callable[P, Iterable[Any]]", fn)
        return cast("Callable[P, R]", _bound_generator_function(generator_function, carried))
    if makes == "async generator":
        async_generator_function = cast("Callable[P, AsyncIterable[Any]]", fn)
        return cast(
            "Callable[P, R]",
            _bound_async_generator_function(async_generator_function, carried),
        )
    coroutine_function = cast("Callable[P, Coroutine[Any, Any, Any]]", fn)
    return cast("Callable[P, R]", _bound_coroutine_function(coroutine_function, carried))


def _bound_generator_function(
    fn: Callable[P, Iterable[T]], carried: Analytics
) -> Callable[P, Iterator[T]]:
    """``fn``, a generator function, each step and its closing with ``carried`` bound
    (set and reset within the step: the thread iterating keeps its own binding)."""

    @functools.wraps(fn)
    def iterate_bound(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return bound_iteration(fn(*args, **kwargs), carried)

    return iterate_bound


def _name_of(fn: Callable[..., object]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _what_a_call_runs(fn: Callable[..., object]) -> object:
    """The function whose code calling ``fn`` runs: a partial's (at any depth), a
    callable object's ``__call__``; else ``fn`` itself."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return fn
    try:
        call = type(fn).__call__
    except AttributeError:  # not callable: calling it raises, as it would unbound
        return fn
    return call if inspect.isfunction(call) else fn


def _what_calling_makes(
    fn: Callable[..., object],
) -> Literal["generator", "async generator", "coroutine", "result"]:
    """What calling ``fn`` makes: a generator or what an event loop runs later (an
    async generator, a coroutine) for ``fn``, a partial of it or an object whose
    ``__call__`` it is; else its result."""
    runs = _what_a_call_runs(fn)
    try:
        if inspect.isgeneratorfunction(runs):
            return "generator"
        if inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(runs):
            return "async generator"
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(runs):
            return "coroutine"
    except Exception:  # a stand-in that claims to be a function (Mock(spec=a_function))
        pass
    return "result"


def _bound_coroutine_function(
    fn: Callable[P, Coroutine[Any, Any, T]], carried: Analytics
) -> Callable[P, Coroutine[Any, Any, T]]:
    """``fn``, an async function, awaited with ``carried`` bound from start to end:
    counted, on its loop's thread, for the next test's start to wait for (a task a
    view leaves running, which a test client's loop thread runs), not for exits."""

    @functools.wraps(fn)
    async def run_bound(*args: P.args, **kwargs: P.kwargs) -> T:
        # For a test's start alone: an app's shutdown runs on the loop that runs it
        # (a task may live as long as the server: no shutdown waits for it).
        call = _bound_call_started(exits_wait=False)
        try:
            with bound(carried):
                return await fn(*args, **kwargs)
        finally:
            if call:
                _bound_call_ended(call)

    return run_bound


def _bound_async_generator_function(
    fn: Callable[P, AsyncIterable[T]], carried: Analytics
) -> Callable[P, AsyncGenerator[T, None]]:
    """``fn``, an async generator function, each step and its closing with ``carried``
    bound (set and reset within the step: the task iterating keeps its own binding)."""

    @functools.wraps(fn)
    async def iterate_bound(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[T, None]:
        async with aclosing(bound_async_iteration(fn(*args, **kwargs), carried)) as items:
            async for item in items:
                yield item

    return iterate_bound


class _BoundCall(Generic[P, R]):
    """What :func:`with_binding` returns for a function that is not async: ``fn``,
    and the visitor to bind around it.

    An object rather than a closure, so that a process pool can pickle it; it
    wears ``fn``'s name, docstring and ``__wrapped__`` for introspection.
    """

    def __init__(self, fn: Callable[P, R], carried: Analytics | None) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._carried = carried

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        call = _bound_call_started()
        try:
            carried = self._carried
            if carried is None:
                return self._fn(*args, **kwargs)
            token = _current.set(carried)
            try:
                return self._fn(*args, **kwargs)
            finally:
                _current.reset(token)
        finally:
            if call:
                _bound_call_ended(call)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # A method decorated with it binds its instance, as the function would.
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __reduce__(self) -> tuple[Any, ...]:
        # Its parts only: the copies of fn's attributes are made again on the other side.
        return (_BoundCall, (self._fn, self._carried))


#: Functions of :func:`with_binding` running on threads the interpreter waits for
#: at exit (not daemons), by thread: an ASGI server ends its worker without that
#: wait, so the app's shutdown waits for them itself (:func:`wait_for_bound_calls`).
_bound_calls_by_thread: dict[int, int] = {}
_bound_calls_changed = threading.Condition(threading.Lock())
#: Those calls by number, each its own (a thread's ident is reused once it ended),
#: and those a test's start waits for but no exit does: on a daemon thread the app
#: did not ask for as one (a test client's event loop runs on one; a thread started
#: from a daemon is one), and coroutines.
_bound_calls_running: dict[int, int] = {}  # number: thread
#: The numbers of those no exit waits for.
_calls_for_tests_alone: set[int] = set()
#: The daemon threads start_thread started as asked (``daemon=True``): work the app
#: chose to leave running, which no test waits for either.
_chosen_daemons: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_call_numbers = itertools.count(1)


def _bound_call_started(*, daemons_too: bool = True, exits_wait: bool = True) -> int:
    """Count a call starting on this thread: its number, or 0 when it is not counted
    (a daemon's, unless ``daemons_too``: then, and for ``exits_wait`` False, only a
    test's start waits for it)."""
    thread = threading.current_thread()
    daemon = thread.daemon
    if daemon and (not daemons_too or thread in _chosen_daemons):
        return 0
    ident = threading.get_ident()
    call = next(_call_numbers)
    with _bound_calls_changed:
        if daemon or not exits_wait:  # no exit waits for a daemon's work
            _calls_for_tests_alone.add(call)
        else:
            _bound_calls_by_thread[ident] = _bound_calls_by_thread.get(ident, 0) + 1
        _bound_calls_running[call] = ident
    return call


def run_counted(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` on this thread as a call the app's shutdown waits for, as it waits
    for those of :func:`with_binding` (an adapter's page call in a worker thread)."""
    call = _bound_call_started(daemons_too=False)
    try:
        return fn(*args, **kwargs)
    finally:
        if call:
            _bound_call_ended(call)


def _bound_call_ended(call: int) -> None:
    ident = threading.get_ident()
    with _bound_calls_changed:
        _bound_calls_running.pop(call, None)
        if call in _calls_for_tests_alone:
            _calls_for_tests_alone.discard(call)
            _bound_calls_changed.notify_all()
            return
        left = _bound_calls_by_thread.get(ident, 1) - 1
        if left > 0:
            _bound_calls_by_thread[ident] = left
        else:
            _bound_calls_by_thread.pop(ident, None)
            if not _bound_calls_by_thread:
                _given_up_on.clear()
        _bound_calls_changed.notify_all()


def _bound_calls_elsewhere(excluding: int | None = None) -> bool:
    """Whether a call runs on a thread other than this one (whose own call, under
    way as it waits, would never end first) and ``excluding`` (the thread a signal
    interrupted); the lock held."""
    return bool(_bound_calls_by_thread.keys() - {threading.get_ident(), excluding})


def wait_for_bound_calls(
    timeout: float,
    *,
    excluding: int | None = None,
    sending: Callable[[], object] | None = None,
) -> bool:
    """Wait until no function of :func:`with_binding` or :func:`start_thread` runs on
    a non-daemon thread other than this one and ``excluding``, at most ``timeout``
    seconds; True when none does.

    For an exit that the interpreter's own wait for threads does not precede.
    ``sending``: called every :data:`~segment_core.lifecycle.SENDING_EVERY` seconds
    of the wait, so that what the calls track as they go is sent meanwhile (a call
    that outlives the wait leaves only what it tracked last undelivered).
    """

    def none_left() -> bool:
        return not _bound_calls_elsewhere(excluding)

    if sending is None:
        with _bound_calls_changed:
            return _bound_calls_changed.wait_for(none_left, timeout)
    deadline = monotonic() + timeout
    while True:
        step = min(lifecycle.SENDING_EVERY, max(0.0, deadline - monotonic()))
        with _bound_calls_changed:
            if _bound_calls_changed.wait_for(none_left, step):
                return True
        if monotonic() >= deadline:
            return False
        try:
            sending()
        except Exception:  # the wait goes on; the delivery after it says what was lost
            logger.exception("segment: could not send while waiting for background work")


def bound_calls_now() -> frozenset[int]:
    """The calls of :func:`with_binding` and :func:`start_thread` running now (on
    daemons too), by number."""
    with _bound_calls_changed:
        return frozenset(_bound_calls_running)


def bound_calls_of_this_thread() -> frozenset[int]:
    """:func:`bound_calls_now` of this thread alone: coroutines its event loop holds
    (between two of a test's, a loop that outlives the test)."""
    this = threading.get_ident()
    with _bound_calls_changed:
        return frozenset(call for call, ident in _bound_calls_running.items() if ident == this)


def wait_for_bound_calls_but(known: frozenset[int], timeout: float) -> bool:
    """:func:`wait_for_bound_calls`, for the calls not in ``known`` (numbers
    :func:`bound_calls_now` gave) alone, but this thread's (under way as it waits);
    True when none of them runs."""
    this = threading.get_ident()

    def none_left() -> bool:
        return all(call in known or ident == this for call, ident in _bound_calls_running.items())

    with _bound_calls_changed:
        return _bound_calls_changed.wait_for(none_left, timeout)


def wait_for_bound_calls_or_warn(
    timeout: float,
    when: str,
    *,
    excluding: int | None = None,
    sending: Callable[[], object] | None = None,
) -> None:
    """:func:`wait_for_bound_calls` (``sending`` as there), with one WARNING
    (``when``: "at shutdown") for the calls still running when ``timeout`` is up.
    Once a wait was given up on, a later one (the process's exit after the app's
    shutdown) does not wait again for the same calls: what they send would be lost
    all the same."""
    global _given_up_on
    with _bound_calls_changed:
        running = _bound_calls_by_thread.keys() - {threading.get_ident(), excluding}
        again = bool(running) and running <= _given_up_on
    if not wait_for_bound_calls(0.0 if again else timeout, excluding=excluding, sending=sending):
        if again:
            return
        with _bound_calls_changed:
            _given_up_on = set(_bound_calls_by_thread)
        # The time waited, the part of shutdown_timeout left to this wait (an exit
        # after the app's shutdown may still wait for non-daemon threads: "may").
        logger.warning(
            "segment: %d call(s) of start_thread or with_binding (or page calls running "
            "the app's hooks) still running after %gs of shutdown_timeout %s; events "
            "they send from now on may be lost",
            bound_calls_running(),
            round(timeout, 2),
            when,
        )


#: The threads whose calls a wait gave up on (see :func:`wait_for_bound_calls_or_warn`),
#: until no call runs.
_given_up_on: set[int] = set()


def bound_calls_running() -> int:
    """How many functions of :func:`with_binding` or :func:`start_thread` run now on
    non-daemon threads."""
    return sum(_bound_calls_by_thread.values())


def shutdown_after_bound_calls(*, leave_to_spool: bool, excluding: int | None = None) -> bool:
    """Shut every live client down (:func:`~segment_core.lifecycle.shutdown_all`)
    once the functions of :func:`with_binding` and :func:`start_thread` still
    running on non-daemon threads have returned; True when all was delivered.

    For a job runner's exit that the interpreter's wait for threads does not
    precede (a process leaving through ``os._exit()``), or follows too late (a
    worker shutting its clients down before it returns). The wait and the
    delivery share one ``shutdown_timeout``: the longest of the clients'. The calls
    of this thread and of ``excluding`` (the thread a signal interrupted) are not
    waited for.
    """
    with _bound_calls_changed:
        elsewhere = _bound_calls_elsewhere(excluding)
    if not elsewhere:
        return lifecycle.shutdown_all(leave_to_spool=leave_to_spool)
    clients = lifecycle.live_clients()
    timeout = lifecycle.longest_shutdown_timeout(clients)
    deadline = monotonic() + timeout
    lifecycle.start_sending(clients)  # what they hold goes out while the calls finish
    wait_for_bound_calls_or_warn(
        timeout,
        "as the process exits",
        excluding=excluding,
        sending=lifecycle.send_what_clients_hold,  # what the calls track, as they go
    )
    return lifecycle.shutdown_all(max(0.0, deadline - monotonic()), leave_to_spool=leave_to_spool)


def _forget_bound_calls() -> None:
    # The parent's threads are not the child's; another may have held the lock.
    global _bound_calls_changed, _bound_calls_by_thread, _given_up_on, _bound_calls_running
    global _calls_for_tests_alone
    _bound_calls_by_thread = {}
    _bound_calls_running = {}
    _calls_for_tests_alone = set()
    _given_up_on = set()
    _bound_calls_changed = threading.Condition(threading.Lock())


_forks.in_every_child(_forget_bound_calls)
_forks.in_every_child(_forget_parents_request)


def _takes_keyword(fn: Callable[..., object], name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (its own, or through ``**``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read: a builtin
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == name and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in parameters
    )


def start_thread(
    fn: Callable[..., object],
    /,
    *args: Any,
    thread_name: str | None = None,
    thread_daemon: bool | None = None,
    **kwargs: Any,
) -> threading.Thread:
    """Start a thread running ``fn(*args, **kwargs)`` bound to the caller's visitor.

    ``thread_name`` and ``thread_daemon`` are the thread's own ``name`` and
    ``daemon`` (see :class:`threading.Thread`). ``name=`` and ``daemon=`` go to
    ``fn`` when it takes them (``send_welcome(email, name)`` is common)::

        start_thread(send_welcome, user.email, name=user.first_name)

    and are the thread's otherwise (``start_thread(poll, daemon=True)``). Returns
    the started thread. Its events are delivered like any other: the thread is not
    a daemon unless asked for (not even when started from one, as a dev server's
    request threads are), and it finishes before the process flushes at exit or
    an ASGI app's lifespan shutdown flushes (within ``shutdown_timeout``). An async
    ``fn`` is refused with a ``TypeError``: its coroutine would never be awaited.
    """
    if _what_calling_makes(fn) in ("async generator", "coroutine"):
        raise TypeError(
            f"start_thread runs a plain function on a new thread; {_name_of(fn)} is "
            "async, and calling it there would only make a coroutine nobody awaits: "
            "await it in a task (with_binding keeps the visitor), or start a thread "
            "that runs it with asyncio.run"
        )
    for option in ("name", "daemon"):
        if option in kwargs and not _takes_keyword(fn, option):
            value = kwargs.pop(option)
            if option == "name" and thread_name is None:
                thread_name = value
            elif option == "daemon" and thread_daemon is None:
                thread_daemon = value
    thread = threading.Thread(
        target=with_binding(fn),
        args=args,
        kwargs=kwargs,
        name=thread_name,
        # threading.Thread's None would take the calling thread's: a daemon's events
        # would be lost at exit.
        daemon=bool(thread_daemon),
    )
    if thread_daemon:
        _chosen_daemons.add(thread)
    thread.start()
    return thread
