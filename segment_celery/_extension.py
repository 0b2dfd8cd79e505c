"""``SegmentCelery``: the visitor travels with each task; delivery at every worker exit.

Everything goes through Celery's signals (nothing of Celery is patched):

- ``before_task_publish``: a task published for a visitor (in a request, a
  thread given the request's context, or a task that has one) carries the
  visitor's snapshot in the message header ``segment_visitor``.
- ``task_prerun`` / ``task_postrun``: the task runs bound to that visitor
  (``segment_core.analytics()`` and ``self.request.analytics`` in a bound task).
- ``worker_process_shutdown`` (a prefork child leaving through ``os._exit``:
  recycled by ``--max-tasks-per-child`` / ``--max-memory-per-child``, or stopped)
  and ``worker_shutdown`` (warm shutdown of solo, threads and prefork workers):
  once the tasks' threads of ``start_thread`` / ``with_binding`` have returned,
  every client delivers what it holds, all within ``shutdown_timeout``. A child
  with a ``spool_dir`` waits only while sends succeed: what a failed send left
  stays on disk, for the next process.
- ``worker_init``: the worker's main process builds the tasks' client (with a
  spool, it delivers what dead processes left), and the receivers above that must
  follow the app's own move behind them.

Under pytest or Django's test runner, the client built from the extension's options
puts its events in ``segment_core.testing.outbox`` unless ``send_in_tests``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import threading
import weakref
from collections.abc import Mapping
from contextvars import Token
from types import FrameType
from typing import Any

from celery import Celery, signals
from celery.utils.dispatch import Signal
from celery.utils.text import match_case

import segment_core
from segment_core import lifecycle, testing
from segment_core.adapters import (
    build_client,
    keep_loggers_on,
    named_by_source,
    offer_as_default,
)
from segment_core.client import Client
from segment_core.config import (
    ALIASES,
    check_option,
    closest_name,
    option_names,
    options_over,
    read_flag,
)
from segment_core.scope import (
    Analytics,
    bind,
    current_or_found,
    reset,
    restore,
)

__all__ = ["CONFIG_PREFIX", "HEADER", "SegmentCelery"]

logger = logging.getLogger("segment.celery")

#: The message header that carries the visitor's snapshot.
HEADER = "segment_visitor"
#: Celery configuration keys ``segment_<option>`` set client options (and
#: ``<NAMESPACE>_SEGMENT_<OPTION>`` under the app's namespace).
CONFIG_PREFIX = "segment_"
#: The extension's own option, besides the client's: events sent for real in tests.
SEND_IN_TESTS = "send_in_tests"

_extensions: weakref.WeakKeyDictionary[Celery, SegmentCelery] = weakref.WeakKeyDictionary()
_connected = False
_connect_lock = threading.Lock()
_running = threading.local()  # per worker thread: the tokens of the tasks it runs


class SegmentCelery:
    """Segment for a Celery app: tasks act for the visitor who caused them.

    ::

        app = Celery("shop", broker="redis://localhost:6379/0")
        SegmentCelery(app)                          # Django: settings.SEGMENT

        SegmentCelery(app, write_key="...", host="https://events.eu1.segmentapis.com")

        @app.task
        def send_confirmation(order_id):
            analytics().track("Order Confirmation Sent", {"order_id": order_id})

    Where the client comes from, first match wins: ``client=``; keyword options
    (every :class:`~segment_core.Client` option) over the app's
    ``segment_<option>`` configuration keys (a client of its own; without a write
    key, the module-level settings fill in the options they leave unset; with one,
    it also becomes ``segment_core``'s default client when there is none); else
    ``segment_core``'s default client (under Django, the one ``settings.SEGMENT``
    configured). Or ``SegmentCelery()`` first and :meth:`init_app` later.

    Under pytest or Django's test runner, the client built from the options sends
    nothing: its events go to ``segment_core.testing.outbox``, unless
    ``send_in_tests=True`` (``segment_send_in_tests``). A client given with
    ``client=``, or the default client, is never diverted.
    """

    def __init__(
        self, app: Celery | None = None, *, client: Client | None = None, **options: Any
    ) -> None:
        _check_options(options)
        if client is not None and not isinstance(client, Client):
            raise TypeError(f"client must be a segment_core.Client, got {type(client).__name__}")
        if client is not None and options.keys() - {SEND_IN_TESTS}:
            raise TypeError("pass client= or client options, not both")
        # A value no client takes is refused now, as the app starts (its client is
        # built later, with the app's segment_* keys and the environment).
        _send_in_tests(options.get(SEND_IN_TESTS))
        for name, value in options.items():
            if name != SEND_IN_TESTS:
                check_option(name, value)
        self._given = client
        self._options = options
        self._own: Client | None = None
        self._lock = threading.Lock()
        # The app whose configuration holds the segment_* keys, read when the client
        # is built: reading it sooner would load Celery's configuration early (an
        # on_after_configure handler connected later would never run) and miss a
        # config_from_object() made after init_app.
        self._app: Celery | None = None
        self._reported = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Celery) -> None:
        """Set Segment up for ``app``, once."""
        if hasattr(app, "_get_current_object"):  # celery.current_app: the app it stands for
            app = app._get_current_object()
        if not isinstance(app, Celery):  # a Flask app, its name: no task would be bound
            raise TypeError(
                f"SegmentCelery needs the celery.Celery app, got {type(app).__module__}."
                f"{type(app).__qualname__}"
            )
        if app in _extensions:
            raise RuntimeError(
                f"Segment is already set up on Celery app {app.main!r}: call init_app once."
            )
        _extensions[app] = self
        self._app = app
        _connect()
        # A process that only publishes tasks (a web app, a script) sends through the
        # extension's own client too, as segment_core's default client: built by the
        # first module-level call that finds no default (see _default_client).

    @property
    def client(self) -> Client:
        """The client the tasks' events go through (see the class docstring).

        Raises :class:`ValueError` naming the option when the options are invalid.
        """
        own = self._own_client()
        if own is not None:
            return own
        import segment_core

        return segment_core.get_client()

    def _own_client(self) -> Client | None:
        """``client=``, or one built from keyword options and ``segment_*`` keys, if any."""
        if self._given is not None:
            return self._given
        if self._own is not None:
            return self._own
        keys = self._config_keys()
        conf: Mapping[str, Any] = {} if self._app is None else self._app.conf
        options = options_over({name: conf[key] for name, key in keys.items()}, self._options)

        def source(name: str) -> str | None:
            if name in self._options:
                return f"SegmentCelery({name}=...)"
            return f"Celery config {keys[name]!r}" if name in keys else None

        try:  # a bad value names its key, as a misnamed key is named
            send_in_tests = _send_in_tests(options.pop(SEND_IN_TESTS, None))
        except ValueError as error:
            raise named_by_source(error, source) from None
        if not options:
            return None
        with self._lock:
            if self._own is None:
                try:
                    own = build_client(options)
                except ValueError as error:
                    raise named_by_source(error, source) from None
                # First: a test's module-level call through it sends nothing.
                testing.divert_in_tests(own, send=send_in_tests, running=_tests_running)
                offer_as_default(own)
                self._own = own
        return self._own

    def _task_client(self) -> Client | None:
        """The client to bind a task's visitor to; None: the default client, at call time."""
        try:
            return self._own_client()
        except (TypeError, ValueError) as exc:
            if not self._reported:
                self._reported = True
                logger.error("segment: %s; tasks use the default client", exc)
            return None

    def _config_keys(self) -> dict[str, str]:
        """The app's ``segment_<option>`` keys (lower-case, as Celery's own settings),
        by the option each sets.

        Under a namespace (``config_from_object(..., namespace="CELERY")``) also
        ``CELERY_SEGMENT_<OPTION>``, which wins, as it does for Celery's own settings.
        """
        if self._app is None:
            return {}
        conf = self._app.conf
        namespace = self._app.namespace
        # In the namespace's case, as Celery reads its own keys.
        namespaced = (
            match_case(f"{namespace.rstrip('_')}_{CONFIG_PREFIX}", namespace) if namespace else None
        )
        names = _known_options()
        plain: dict[str, str] = {}
        found: dict[str, str] = {}
        for key in list(conf.keys()):
            if not isinstance(key, str):
                continue
            if namespaced is not None and key.startswith(namespaced):
                options, name = found, key[len(namespaced) :].lower()
            elif key.startswith(CONFIG_PREFIX):
                options, name = plain, key[len(CONFIG_PREFIX) :]
            else:
                continue
            if name not in names:
                raise ValueError(f"Celery config {key!r}: {_unknown(name)}")
            options[name] = key
        return {**plain, **found}

    def __repr__(self) -> str:
        return (
            f"<SegmentCelery apps={[app.main for app in _extensions if _extensions[app] is self]}>"
        )


def _default_client() -> Client | None:
    """For segment_core's module-level calls while there is no default client: the
    own client of a live (not closed) app's extension, built now if need be, when it
    has a write key."""
    import segment_core

    if segment_core.default_client is not None or not _extensions:
        return None
    try:
        from celery._state import _get_active_apps

        apps = list(_get_active_apps())
    except ImportError:  # a Celery without it: every app set up
        apps = list(_extensions)
    for app in apps:
        extension = _extensions.get(app)
        client = extension._task_client() if extension is not None else None
        if client is not None and client.config.write_key:  # else the module-level settings'
            return client
    return None


segment_core._client_finders.append(_default_client)


def _tests_running() -> bool:
    """Whether tests run in this process: pytest's, or, with Django, its test runner."""
    if "django" not in sys.modules:
        return testing.pytest_running()
    from segment_django.conf import running_tests

    return running_tests()


def _send_in_tests(value: object) -> bool:
    """The ``send_in_tests`` option: None (unset) is its default, False."""
    return False if value is None else read_flag(SEND_IN_TESTS, value)


def _known_options() -> frozenset[str]:
    """Every client option, analytics-python's names and the extension's own."""
    return option_names() | set(ALIASES) | {SEND_IN_TESTS}


def _check_options(options: Mapping[str, Any]) -> None:
    names = _known_options()
    for name in options:
        if name not in names:
            raise TypeError(f"SegmentCelery got an {_unknown(name)}")


def _unknown(name: str) -> str:
    close = closest_name(name, sorted(_known_options()))
    return f"unknown option {name!r}" + (f"; did you mean {close!r}?" if close else "")


def _connect() -> None:
    global _connected
    with _connect_lock:
        if _connected:
            return
        _connected = True
        signals.before_task_publish.connect(_on_publish, weak=False)
        signals.task_prerun.connect(_on_prerun, weak=False)
        signals.worker_init.connect(_on_worker_init, weak=False)
        for signal, receiver in _runs_last():
            signal.connect(receiver, weak=False)


def _runs_last() -> tuple[tuple[Signal, Any], ...]:
    """Receivers that must follow the app's own: the app's ``task_postrun``
    receivers still see the task's visitor, and what the app's shutdown receivers
    track is delivered with the rest."""
    return (
        (signals.task_postrun, _on_postrun),
        (signals.worker_process_shutdown, _on_process_shutdown),
        (signals.worker_shutdown, _on_worker_shutdown),
        # After the app's logging (its setup_logging receiver's dictConfig, which
        # turns off the library's loggers), in the worker and in each pool child.
        (signals.celeryd_after_setup, _on_logging_set_up),
        (signals.worker_process_init, _on_logging_set_up),
    )


def _on_logging_set_up(sender: Any = None, **kw: Any) -> None:
    """Turn the library's loggers on again: a worker's delivery failures are seen."""
    keep_loggers_on()


def _on_worker_init(sender: Any = None, **kw: Any) -> None:
    """The worker has imported every task module and is about to start its pool."""
    # Celery calls receivers in the order they were connected, and the app's were
    # connected as its modules were imported, after SegmentCelery(app).
    for signal, receiver in _runs_last():
        signal.disconnect(receiver)
        signal.connect(receiver, weak=False)
    extension = _extensions.get(getattr(sender, "app", None))
    if extension is not None:
        _start_client(extension)


def _start_client(extension: SegmentCelery) -> None:
    """Build the tasks' client in the worker's main process, before its pool starts.

    With a spool, this long-lived process then delivers what dead processes left
    (a child the OOM killer took, the worker before a restart) while no task runs,
    and again at the worker's exit. Pool children forked later get clients of their own.
    """
    try:
        if extension._task_client() is None:
            segment_core.get_client()
    except Exception:  # the worker runs all the same; tasks build the client again
        logger.exception("segment: could not build the client as the Celery worker starts")


def _on_publish(
    sender: Any = None, headers: dict[str, Any] | None = None, body: Any = None, **kw: Any
) -> None:
    if headers is None:
        return
    try:
        app = _publishing_app()
        if app is not None and app not in _extensions:
            return  # another app's message (another team's broker): nothing of the visitor
        _visitor_to_chord_callbacks(body)
        if HEADER in headers:  # given explicitly: leave it
            return
        obj = current_or_found()
        if obj is not None:
            headers[HEADER] = obj.snapshot()
    except Exception:  # publishing the task matters more than its visitor
        logger.exception("segment: could not attach the visitor to task %s", sender)


def _publishing_app() -> Celery | None:
    """The app publishing the message: the ``self`` of the ``Celery.send_task`` call
    the signal is sent from (``delay()``, ``apply_async()`` and a canvas's publishing
    all go through it); ``None`` when published another way, by code that calls the
    app's ``amqp`` itself, whose message is treated as the extension's own."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(_MAX_PUBLISH_FRAMES):
        if frame is None:
            break
        code = frame.f_code
        # Celery's own method, wrapped or not (Sentry's integration wraps it, before
        # this module is imported or after): its frame holds the app as ``self``.
        if code is _SEND_TASK or code.co_name == "send_task":
            app = frame.f_locals.get("self")
            if isinstance(app, Celery):
                return app
            if code is _SEND_TASK:
                return None
        frame = frame.f_back
    return None


#: The code of the app's method that sends the signal, and how far up it is looked for.
_SEND_TASK = inspect.unwrap(Celery.send_task).__code__
_MAX_PUBLISH_FRAMES = 16


def _visitor_to_chord_callbacks(body: Any) -> None:
    """A chord's header task carries its callback, which the last header task to
    finish publishes, bound to that task's visitor. Every such callback the message
    carries gets the visitor of the code publishing it now (an explicit none when
    unbound), unless given one: the chord's, the callback of an outer chord a
    callback carries in turn, and those the steps of a chain in a chord's header
    carry (its last step, or a chord it ends with)."""
    embed = body[2] if isinstance(body, (tuple, list)) and len(body) == 3 else body
    if not isinstance(embed, dict) or not (embed.get("chord") or embed.get("chain")):
        return
    callbacks = _callbacks_without_visitor(embed)
    if not callbacks:
        return
    obj = current_or_found()
    snapshot = obj.snapshot() if obj is not None else None
    for callback in callbacks:
        options = callback.get("options")
        if not isinstance(options, dict):
            options = callback["options"] = {}
        given = options.get("headers")
        options["headers"] = {**(given if isinstance(given, dict) else {}), HEADER: snapshot}


def _callbacks_without_visitor(embed: dict[str, Any]) -> list[dict[str, Any]]:
    """The callbacks a chord's header task carries, among a message's ``chord`` and
    ``chain`` and the signatures nested in them up to ``_MAX_CANVAS_DEPTH``, that
    have no visitor of their own."""
    steps = embed.get("chain")
    pending: list[tuple[object, bool, int]] = [(embed.get("chord"), True, 1)]
    pending += [(step, False, 1) for step in (steps if isinstance(steps, list) else ())]
    seen: set[int] = set()
    found = []
    while pending:
        signature, is_callback, depth = pending.pop()
        if not isinstance(signature, dict) or depth > _MAX_CANVAS_DEPTH or id(signature) in seen:
            continue
        seen.add(id(signature))
        if is_callback and not _has_visitor(signature):
            found.append(signature)
        pending += [(inner, callback, depth + 1) for inner, callback in _nested(signature)]
    return found


def _nested(signature: dict[str, Any]) -> list[tuple[object, bool]]:
    """The signatures inside ``signature``, each with whether a chord's header task
    carries it as its callback: the callback of the chord whose header ``signature``
    belongs to (its options' ``chord``), and for a chord, group or chain, its body,
    header or tasks. A chord that is a chain's step is published by the worker
    after the step before it, whose visitor its callback gets, as the chain's other
    steps do."""
    options = signature.get("options")
    nested: list[tuple[object, bool]] = []
    if isinstance(options, dict):
        nested.append((options.get("chord"), True))
    kwargs = signature.get("kwargs")
    if signature.get("subtask_type") in _CANVAS_TYPES and isinstance(kwargs, dict):
        nested.append((kwargs.get("body"), False))
        for key in ("header", "tasks"):
            inner = kwargs.get(key)
            nested += [(one, False) for one in (inner if isinstance(inner, list) else [inner])]
    return nested


def _has_visitor(signature: dict[str, Any]) -> bool:
    options = signature.get("options")
    headers = options.get("headers") if isinstance(options, dict) else None
    return isinstance(headers, dict) and HEADER in headers


#: The signatures that hold others in their ``kwargs``.
_CANVAS_TYPES = frozenset({"chord", "group", "chain"})
#: How deep signatures nested in a message (chords in chords, chains in a chord's
#: header, chords in a chain's steps) are followed to chords' callbacks.
_MAX_CANVAS_DEPTH = 16


def _on_prerun(sender: Any = None, task: Any = None, **kw: Any) -> None:
    stack: list[Token[Analytics | None] | None] = _running.__dict__.setdefault("tokens", [])
    token = None
    try:
        extension = _extensions.get(getattr(task, "app", None))
        if extension is not None:
            request = task.request
            client = extension._task_client()
            snapshot = _visitor_header(request)
            obj = restore(snapshot, client, source=f"Celery task {task.name!r}")
            if obj is None and request.is_eager:
                # Run here by task.apply() (or eager mode), in the caller's context:
                # the caller's visitor, if any, is the task's, unless the header
                # names none, or none that can be read, as for a published task:
                # then none is, instead of the caller's.
                obj = Analytics(client) if _given(request) else current_or_found()
            if obj is not None:
                token = bind(obj)
            request.analytics = obj if obj is not None else Analytics(client)
    except Exception:  # the task runs, bound or not
        logger.exception("segment: could not bind the visitor of a Celery task")
    stack.append(token)


def _visitor_header(request: Any) -> object:
    """The snapshot a task came with: a worker's request has the message's headers as
    attributes; ``task.apply(headers=...)`` leaves them in ``request.headers``."""
    value = request.get(HEADER)
    if value is None:
        headers = getattr(request, "headers", None)
        if isinstance(headers, Mapping):
            value = headers.get(HEADER)
    return value


def _given(request: Any) -> bool:
    """Whether ``task.apply(headers=...)`` named the task's visitor, none included."""
    headers = getattr(request, "headers", None)
    return isinstance(headers, Mapping) and HEADER in headers


def _on_postrun(sender: Any = None, task: Any = None, **kw: Any) -> None:
    stack: list[Token[Analytics | None] | None] = _running.__dict__.get("tokens", [])
    if not stack:
        return
    token = stack.pop()
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context: nothing to undo
            reset(token)


def _on_process_shutdown(**kw: Any) -> None:
    """A prefork child is about to leave through ``os._exit``: atexit will not run.

    Children are recycled often (``--max-tasks-per-child``): during an outage the
    spool keeps what they hold instead of each one waiting ``shutdown_timeout``.
    """
    _deliver("worker process", leave_to_spool=True)


def _on_worker_shutdown(**kw: Any) -> None:
    """The worker stopped its pool: every task of this process has finished, but
    threads they started may still run (the interpreter waits for them only later)."""
    _deliver("worker", leave_to_spool=False)


def _deliver(what: str, *, leave_to_spool: bool) -> None:
    try:
        # The threads its tasks started (their own, an executor's, start_thread's)
        # first, as the interpreter would have waited for them.
        if not lifecycle.shutdown_after_app_threads(leave_to_spool=leave_to_spool):
            logger.warning("segment: the Celery %s exits with events undelivered", what)
    except Exception:
        logger.exception("segment: delivery at the Celery %s's exit failed", what)
