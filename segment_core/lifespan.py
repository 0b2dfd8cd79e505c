"""ASGI's lifespan protocol: flush a client before shutdown completes.

Framework-free (the standard library only), for every ASGI entry point: the
``segment_asgi`` middleware, and :class:`ShutdownFlush` for an app that needs
nothing but the flush, such as Django's ASGI handler with ``segment_django``::

    application = ShutdownFlush(get_asgi_application(), client=segment_django.get_client)

Servers (uvicorn, hypercorn, gunicorn's uvicorn worker) end a worker without
running ``atexit`` handlers, so lifespan shutdown is where an ASGI app delivers
what it accepted. A server that does run them next (uvicorn without
``--workers``, stopped with Ctrl-C) spends one ``shutdown_timeout`` on both: the
exit's delivery does not wait again for a host that let this flush run out of
time. Stopped with SIGTERM, uvicorn ends the process without them: this flush is
the last delivery.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from segment_core import lifecycle
from segment_core._clock import monotonic
from segment_core.adapters import keep_loggers_on
from segment_core.scope import wait_for_bound_calls_or_warn
from segment_core.testing import pytest_running

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = [
    "FLUSHED_AT_SHUTDOWN",
    "TRACKED_BELOW",
    "Flushable",
    "ShutdownFlush",
    "flush_in_thread",
    "flush_with_joined",
    "run_lifespan",
    "stops_through_atexit",
]

logger = logging.getLogger("segment.core")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: apps declare their parameters in many ways (Django's handler
# takes a dict and Mappings, Starlette MutableMappings); all are ASGI apps.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_SHUTDOWN_ANSWERS = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


async def run_lifespan(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, flush: Callable[[], Awaitable[None]]
) -> None:
    """Run ``app``'s lifespan, calling ``flush()`` before the server hears shutdown is done.

    The flush comes after the app's own shutdown handlers, which may still send
    events. An app that does not speak lifespan (Django's ASGI handler raises on
    it before reading anything; some apps just return) has it answered here
    instead, so the server still runs startup and shutdown, and the flush still
    happens. An app that answered anything (a failed startup, say), or raised
    after it read the startup (a plain middleware whose own startup failed), keeps
    its own outcome, exceptions included: the server decides, as without this.
    """
    received: list[Message] = []
    answered = False

    async def receive_and_remember() -> Message:
        message = await receive()
        received.append(message)
        if message.get("type") == "lifespan.startup":
            # The server's handler of SIGTERM is in place (uvicorn's): its graceful
            # stop waits for the requests in progress before this shutdown comes.
            lifecycle.deliver_as_the_stop_begins()
        return message

    async def send_after_flush(message: Message) -> None:
        nonlocal answered
        answered = True
        if message["type"] in _SHUTDOWN_ANSWERS:
            await flush()
        elif message["type"] == "lifespan.startup.complete":
            # A dictConfig() the app's startup made turned the library's loggers off.
            keep_loggers_on()
        await send(message)

    try:
        await app(scope, receive_and_remember, send_after_flush)
    except Exception:
        if answered or received:
            raise
        logger.debug("segment: the app does not support lifespan; answering it", exc_info=True)
    if not answered:
        await _answer(received, receive, send, flush)


async def _answer(
    received: list[Message], receive: Receive, send: Send, flush: Callable[[], Awaitable[None]]
) -> None:
    """Speak the protocol for the app, starting with what it read before giving up."""
    pending = deque(received)
    while True:
        message = pending.popleft() if pending else await receive()
        if message["type"] == "lifespan.startup":
            lifecycle.deliver_as_the_stop_begins()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await flush()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _to_thread(function: Callable[[float], bool], timeout: float) -> bool:
    # anyio where it is installed (Starlette's apps may run on trio), else asyncio.
    try:
        import anyio.to_thread
    except ImportError:
        return await asyncio.to_thread(function, timeout)
    return await anyio.to_thread.run_sync(function, timeout)


async def flush_in_thread(client: Client | None, *, ends_by: float | None = None) -> None:
    """Deliver what ``client`` holds, off the event loop, within its ``shutdown_timeout``
    (and by the monotonic time ``ends_by``, if given).

    Threads of :func:`~segment_core.scope.start_thread` and functions of
    :func:`~segment_core.scope.with_binding` still running are waited for first,
    within the same time: the server ends the process next, without the
    interpreter's wait for them, and their events would be lost.
    """
    if client is None:
        return
    timeout, wait = lifecycle.shutdown_wait(client)  # (shorter as a dev server reloads)
    if ends_by is not None:
        timeout = max(0.0, min(timeout, ends_by - monotonic()))
    deadline = monotonic() + timeout
    try:
        delivered = await _to_thread(functools.partial(_flush_after_bound_calls, client), timeout)
    except Exception:
        logger.exception("segment: the flush at shutdown failed")
        return
    lifecycle.shutdown_flush_ended(client, deadline=deadline, delivered=delivered)
    if not delivered:
        client._warn_undelivered(f"within {wait} at shutdown")


def _flush_after_bound_calls(client: Client, timeout: float) -> bool:
    deadline = monotonic() + timeout
    client.flush(0)  # what it holds already goes out while the threads finish
    # What the calls track as they go is sent meanwhile.
    wait_for_bound_calls_or_warn(timeout, "at shutdown", sending=functools.partial(client.flush, 0))
    return client.flush(max(0.0, deadline - monotonic()))


#: Set in ``scope["state"]`` (shared by the copies of a scope that routers make) by an
#: adapter that tracks the request itself below an ASGI middleware, Django's under
#: ASGI: ``segment_asgi``'s middleware around it stands aside.
TRACKED_BELOW = "segment_django.tracked"


#: Set by an app that got lifespan and flushes at its shutdown (:class:`ShutdownFlush`,
#: ``segment_asgi``'s middleware) in the scope of each request and WebSocket it
#: passes on: what joined that flush (a ``WeakSet``; see :meth:`ShutdownFlush.join`).
FLUSHED_AT_SHUTDOWN = "segment.flushed_at_shutdown"


class Flushable(Protocol):
    """What joins the flush of an app above it: a middleware that gets no lifespan itself."""

    async def shutting_down(self) -> Client | None:
        """The server is shutting down: finish what is pending; the client to flush."""
        ...


class ShutdownFlush:
    """An ASGI app that passes everything to ``app`` and flushes ``client`` at shutdown.

    ``client`` is a :class:`Client`, or a function returning one or several
    (called at shutdown, so a client built lazily on the first request is one
    flushed); several are flushed one after the other, each within its own
    ``shutdown_timeout``. When ``app`` does not speak lifespan, this answers it
    for the server.

    Once it got lifespan it marks the scope of each request and WebSocket with
    :data:`FLUSHED_AT_SHUTDOWN`: a middleware below that gets no lifespan itself
    (a mounted app's, Django's) joins it (:meth:`join`), and its client is flushed
    too. Without lifespan it flushes nothing, and marks nothing.
    """

    def __init__(
        self,
        app: ASGIApp,
        client: Client | Callable[[], Client | Iterable[Client] | None] | None = None,
    ) -> None:
        self.app = app
        self._client = client
        # Weakly: a middleware let go of (an app rebuilt in tests) is gone.
        self._joined: weakref.WeakSet[Flushable] = weakref.WeakSet()
        self._got_lifespan = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self._got_lifespan = True
            await run_lifespan(self.app, scope, receive, send, self._flush)
            return
        if self._got_lifespan:
            scope[FLUSHED_AT_SHUTDOWN] = self._joined
        await self.app(scope, receive, send)

    @staticmethod
    def join(scope: Scope, flushable: Flushable) -> bool:
        """Have ``flushable``'s client flushed by the app that marked ``scope``
        (the scope of a request it passed on); False when none did."""
        joined = scope.get(FLUSHED_AT_SHUTDOWN)
        if joined is None:
            return False
        joined.add(flushable)
        return True

    async def _flush(self) -> None:
        from segment_core.client import Client

        client = self._client
        found = client() if callable(client) else client
        own = (found,) if found is None or isinstance(found, Client) else found
        await flush_with_joined(own, self._joined)


async def flush_with_joined(
    clients: Iterable[Client | None], joined: Iterable[Flushable], *, began: float | None = None
) -> None:
    """Flush ``clients`` and those of what ``joined``, each once, side by side within
    the longest ``shutdown_timeout`` (from ``began``, the shutdown's start, if given:
    what was waited for before counts); then the process's other live clients, while
    their sends succeed.

    Every joined one is asked before the first flush: what it finishes then (the
    page call of a response the server cut short) goes out with the rest. The
    others (an app's own ``Client``, the module-level one, a mounted app's) get no
    later chance where the server ends its workers without ``atexit`` (uvicorn's
    ``--workers``). One whose last send failed is not waited for, and delivers at
    exit if the process has one; under pytest, whose process goes on after each
    ``TestClient``'s lifespan and delivers at its exit, they are only started (each
    test would wait for a host that does not answer).
    """
    found = list(clients)
    for each in list(joined):
        try:
            found.append(await each.shutting_down())
        except Exception:
            logger.exception("segment: could not ask %r for its client at shutdown", each)
    own: dict[int, Client] = {}
    for client in found:
        if client is not None:
            own.setdefault(id(client), client)
    others = [client for client in lifecycle.live_clients() if id(client) not in own]
    lifecycle.start_sending([*own.values(), *others])  # all at once; then each is waited for
    start = monotonic() if began is None else began
    ends_by = start + max((lifecycle.shutdown_wait(c)[0] for c in own.values()), default=0.0)
    for client in own.values():
        await flush_in_thread(client, ends_by=ends_by)
    if others and not pytest_running():
        # Within the same time as the others, counted from the same start: side by side.
        others_end = start + max(lifecycle.shutdown_wait(c)[0] for c in others)
        flush = functools.partial(_flush_while_sends_succeed, others, others_end)
        await _to_thread(flush, 0.0)


def _flush_while_sends_succeed(clients: list[Client], ends_by: float, ignored: float) -> bool:
    lifecycle.flush_while_sends_succeed(clients, ends_by=ends_by)
    return True


def stops_through_atexit() -> bool:
    """Whether this process's ASGI server runs ``atexit`` as it stops, so that the
    clients deliver then without a lifespan flush: Daphne, whose Twisted reactor
    runs the process and which has no lifespan.

    ``daphne`` in Django's ``INSTALLED_APPS`` (for its ``runserver``) installs the
    reactor in every process, where only Daphne's server runs it.
    """
    reactor = sys.modules.get("twisted.internet.reactor")  # the installed reactor
    return bool(getattr(reactor, "running", False))
