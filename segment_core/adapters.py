"""What every framework adapter does with its own settings, written once.

Where an adapter's client comes from (Django's ``settings.SEGMENT``, Flask's
``SEGMENT_*`` keys, the keywords of ``SegmentMiddleware`` and ``SegmentCelery``):

- settings without a write key: :func:`build_client` completes them with the
  module-level settings (``segment_core.write_key``, ``segment_core.host``, ...),
  each option they leave unset taking its module-level value (so the key and the
  host stay a pair), then the environment. Where one process has one set of such
  settings (Django's ``settings.SEGMENT``, ``SegmentMiddleware``'s keywords),
  settings with no client option at all use :func:`default_client` instead, the
  client ``segment_core``'s module-level calls use; a Flask app, of which a
  process may make many (each diverted in tests on its own), has its own;
- settings with a write key of their own: a client of their own.

A client an adapter builds becomes the default client when there is none, so that
module-level calls outside requests (commands, workers) send with it. One without a
write key serves them only until a write key is set (:func:`offer_as_default`):
meanwhile they go where the adapter's own calls go (the test outbox, or nowhere,
quietly, with ``send=False``); a key set later (a worker's start-up) makes the
default client from the module-level settings, as in a process with no adapter.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import weakref
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, NoReturn

import segment_core
from segment_core import _forks
from segment_core._version import DISTRIBUTION
from segment_core.client import Client
from segment_core.config import ALIASES

__all__ = [
    "SERVER_KEY_IN_BROWSER",
    "SERVER_KEY_IN_BROWSER_FIX",
    "build_client",
    "default_client",
    "delivers",
    "hands_server_key_to_browsers",
    "keep_loggers_on",
    "named_by_source",
    "offer_as_default",
    "raise_without_framework",
    "require_framework_version",
    "server_write_key",
    "shared_client",
    "withdraw_as_default",
]

#: What every adapter says when the snippet's key is the server's, and how to fix it.
SERVER_KEY_IN_BROWSER = (
    "browser_write_key is the server's write_key: the snippet hands it to every browser, "
    "where anyone can read it and send events as the server"
)
SERVER_KEY_IN_BROWSER_FIX = (
    "give browser_write_key the write key of a website (analytics.js) source"
)


def require_framework_version(*, adapter: str, framework: str, extra: str) -> None:
    """Raise ``ImportError`` naming the version needed when the installed
    ``framework`` is older than the one the ``extra`` asks for (``pip install
    segment-web`` without the extra checks no version). The minimum is read from
    the package's own metadata, where ``pyproject.toml`` put it; nothing is checked
    without that metadata or without the framework (:func:`raise_without_framework`
    names the extra then)."""
    minimum = _minimums().get((extra, framework.lower()))
    if minimum is None:
        return
    try:
        found = metadata.version(framework)
    except Exception:  # none installed, or metadata too broken to say: not checked
        return
    release = _release(found) if isinstance(found, str) else ()
    if release and release < _release(minimum):
        raise ImportError(
            f"{adapter} needs {framework} >= {minimum}, and {found} is installed: "
            f"pip install 'segment-web[{extra}]'",
            name=framework,
        )


@functools.cache
def _minimums() -> dict[tuple[str, str], str]:
    """The lower bound of each extra's requirements, by (extra, requirement name)."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except Exception:  # none installed (a source tree on the path), or broken metadata
        return {}
    found: dict[tuple[str, str], str] = {}
    for requirement in requirements:
        matched = _MINIMUM_OF_EXTRA.fullmatch(requirement)
        if matched is not None:
            found[(matched["extra"], matched["name"].lower())] = matched["minimum"]
    return found


#: A requirement of one extra with a lower bound: ``django>=4.2; extra == "django"``.
_MINIMUM_OF_EXTRA = re.compile(
    r"(?P<name>[A-Za-z0-9._-]+)\s*>=\s*(?P<minimum>[0-9][0-9.]*)\s*;"
    r"\s*extra\s*==\s*[\"'](?P<extra>[A-Za-z0-9._-]+)[\"']\s*"
)


def _release(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with: ``(5, 0)`` for ``5.0rc1``."""
    numbers = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(n) for n in numbers.group().split(".")) if numbers else ()


def raise_without_framework(
    error: ModuleNotFoundError, *, adapter: str, framework: str, extra: str
) -> NoReturn:
    """An adapter imported without its framework: an error that names the extra that
    installs it (``error`` itself when another module is missing)."""
    missing = error.name or ""
    if missing == framework or missing.startswith(framework + "."):
        raise ModuleNotFoundError(
            f"{adapter} needs {missing}, which is not installed: "
            f"pip install 'segment-web[{extra}]'",
            name=missing,
        ) from error
    raise error


def default_client() -> Client:
    """``segment_core``'s default client, made now from the module-level settings if
    need be. While they (and ``SEGMENT_WRITE_KEY``) give no write key: the client
    without one the module-level calls use meanwhile, which is not the default client."""
    client = segment_core.default_client
    if client is None:
        client = segment_core._default_or_keyless_client()
    return client


def delivers(client: Client | None) -> bool:
    """Whether ``client`` sends what it holds, so that a server ending its workers
    without a flush would lose it: not one made with ``send=False`` or without a
    write key, nor one diverted to the test outbox. None (no client built yet): it
    may."""
    from segment_core.testing import diverted

    return client is None or (client.config.enabled and not diverted(client))


def build_client(options: Mapping[str, Any]) -> Client:
    """A client of an adapter's own for its client ``options`` (perhaps none).

    Without a write key of their own, each option they leave unset takes its
    module-level setting. A bad option raises :class:`ValueError` (or
    :class:`TypeError` for an unknown one) naming it. Hand the client to
    :func:`offer_as_default` once it is set up (diverted in tests).
    """
    return Client(**_completed(options))


def named_by_source(
    error: ValueError, source: Callable[[str], str | None], default: str | None = None
) -> ValueError:
    """``error``, a bad option's (its text starts with the option's name), prefixed
    with where the option was set: ``source(name)``, asked by each name of the
    option (analytics-python's too) until one answers; else ``default``. As it was
    when neither says.

    An error about two options (``cookie_name and user_cookie_name are both ...``,
    ``oauth_key_id must be set too: OAuth needs oauth_client_id ...``) names where
    the first of those it names that was set was set: the option that brought it.
    """
    text = str(error)
    where = None
    for name in dict.fromkeys(re.findall(r"\b[a-z][a-z_]*", text)):
        option = ALIASES.get(name, name)
        aliases = (alias for alias, target in ALIASES.items() if target == option)
        where = next(filter(None, map(source, (option, *aliases))), None)
        if where is not None:
            break
    where = where or default
    return error if where is None else ValueError(f"{where}: {text}")


def shared_client(options: Mapping[str, Any], *, variant: object = None) -> Client:
    """:func:`build_client` once per process for the same option values: a framework
    that makes one adapter instance per route gets one client (one sender thread and
    buffer), not one per instance.

    Values count as the same when they are equal: a write key read anew from
    ``os.environ``, a host built with an f-string, a bound method of the same object.
    Those that cannot be hashed (a ``default_context`` dict) count by identity: the
    same object. Functions are equal only to themselves, so two hooks defined apart
    (each call of an app factory defining its own) are two options, even when their
    code is the same: what they capture may differ. One shut down since is replaced.
    ``variant``: what else the adapter sets up its client with (its test mode), which
    only instances that agree on it share.
    """
    completed = _completed(options)  # module-level settings changed since: another client
    key = (variant, tuple(sorted((name, _compared(value)) for name, value in completed.items())))
    with _shared_lock:
        client = _shared.get(key)
        if client is None or client._shut_down:
            client = _shared[key] = Client(**completed)
    return client


class _Identity:
    """A value that cannot be hashed, as a key compares it: by identity (and kept, so
    no other object takes its id while the key lives)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


def _compared(value: object) -> object:
    """``value`` as :func:`shared_client`'s key compares it: equal values of one type
    (``True`` is not ``1``) are the same option; one that cannot be hashed, itself."""
    try:
        hash(value)
    except TypeError:
        return _Identity(value)
    return (type(value), value)


#: The clients of :func:`shared_client` by their option values, held weakly: a client
#: goes once nothing uses it (its sender thread, while it runs, holds it), and its
#: entry with it.
_shared: weakref.WeakValueDictionary[tuple[object, tuple[tuple[str, object], ...]], Client] = (
    weakref.WeakValueDictionary()
)
#: Each process's own, made at its first use there (a forked child's, after a gevent
#: worker monkey-patched it: a real lock held while Client() starts a thread would
#: stop every green thread).
_shared_lock = _forks.ProcessLock()


def offer_as_default(client: Client) -> None:
    """Make ``client`` the default client if there is none; without a write key, the
    client the module-level calls use until one is set, unless an adapter's already is.

    Not the default client itself: it would keep a key set later from being used.
    """
    with segment_core._default_lock:
        existing = segment_core.default_client
        if existing is not None:
            if existing is client:
                return
            if _keeps_from_network_where_existing_sends(existing, client):
                # In tests, an app set to send for real (one test's, to a collector)
                # sends its own events; the module-level calls of every other test
                # go to an app's client that keeps them from the network.
                segment_core.default_client = client
            elif existing._sends_in_tests and client._divert_check is not None:
                # Diverted later, or never (a Flask app whose TESTING a fixture sets
                # after init_app, or one that sends): asked again then, and at the
                # module-level calls meanwhile (under pytest alone).
                client._on_diverted = _diverted_later
                if _pytest_running():
                    with _undecided_lock:
                        _undecided.add(client)
            elif existing in segment_core._made_from_settings:
                _same_test_mode(existing, client)
            return
        if client.config.write_key:
            segment_core.default_client = client
        elif segment_core._keyless_client is None or not segment_core._keyless_is_adapters:
            # One the module made for itself (a call before the app was set up) gives
            # way: the app's configuration (its test mode, send=False) is what counts.
            segment_core._keyless_client = client
            segment_core._keyless_is_adapters = True


#: The adapters' clients offered under pytest while the default client sent in
#: tests, whose test mode was still to come; changed and read under its lock.
_undecided: weakref.WeakSet[Client] = weakref.WeakSet()
_undecided_lock = _forks.ProcessLock()


def _pytest_running() -> bool:
    from segment_core.testing import pytest_running

    return pytest_running()


def _settle_undecided() -> None:
    """Ask each client of :data:`_undecided` its test mode now (a module-level call
    comes): one diverted takes the module-level calls (see :func:`_diverted_later`);
    one whose check cannot tell yet is asked again at the next, one that decided
    never again."""
    if not _undecided:
        return
    with _undecided_lock:
        clients = list(_undecided)
    for client in clients:
        client._settle_divert()  # diverted: see _diverted_later; not known yet: kept
        if client._divert_check is None:
            with _undecided_lock:
                _undecided.discard(client)


segment_core._when_default_sends_in_tests.append(_settle_undecided)


def _diverted_later(client: Client) -> None:
    """An adapter's client offered while the default client sent in tests, diverted
    since: it takes the module-level calls, as one diverted as it was built does."""
    with segment_core._default_lock:
        existing = segment_core.default_client
        if existing is not None and _keeps_from_network_where_existing_sends(existing, client):
            segment_core.default_client = client


def _keeps_from_network_where_existing_sends(existing: Client, client: Client) -> bool:
    """Under pytest, whether ``existing``, the default client, sends in tests and
    ``client``, an adapter's with a write key, is diverted now (a Flask app made
    with ``TESTING``; one whose ``TESTING`` comes later, or never, may send)."""
    from segment_core.testing import outbox

    return (
        existing._sends_in_tests
        and not client._sends_in_tests
        and client._outbox is outbox  # the test outbox, not a test's own list
        and bool(client.config.write_key)
        and _pytest_running()
    )


def _same_test_mode(made: Client, adapters: Client) -> None:
    """A module-level call before the adapter was set up made the default client from
    the module-level settings: in tests it keeps from the network what the adapter's
    client keeps (unless its test mode was decided already)."""
    if made._outbox is not None or made._divert_check is not None or made._sends_in_tests:
        return
    if adapters._outbox is not None:
        made._divert(adapters._outbox)
    elif adapters._divert_check is not None:
        made._divert_when(*adapters._divert_check)
    elif adapters._sends_in_tests:  # sent for real in tests, a capture's too
        made._sends_in_tests = True


def withdraw_as_default(client: Client) -> bool:
    """Stop ``client`` serving the module-level calls (it is being replaced); whether
    it did. The next call, or adapter, makes or offers another."""
    with segment_core._default_lock:
        if segment_core.default_client is client:
            segment_core.default_client = None
            return True
        if segment_core._keyless_client is client:
            segment_core._keyless_client = None
            return True
    return False


def server_write_key(options: Mapping[str, Any]) -> str | None:
    """The write key a client for an adapter's client ``options`` sends with, without
    making one: theirs, else the default client's (no options) or the module-level
    setting, else ``SEGMENT_WRITE_KEY``."""
    key = options.get("write_key")
    if key:
        return str(key)
    if not options and segment_core.default_client is not None:
        return segment_core.default_client.config.write_key
    return segment_core.write_key or os.environ.get("SEGMENT_WRITE_KEY") or None


def hands_server_key_to_browsers(browser_write_key: str | None, write_key: str | None) -> bool:
    """Whether the snippet's ``browser_write_key`` is the server's ``write_key``."""
    return browser_write_key is not None and browser_write_key == write_key


def _completed(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options``; without a write key, over the module-level settings that are set."""
    if options.get("write_key"):
        return dict(options)
    # A setting left empty ("" from an unset variable) keeps the module-level one;
    # so does a write key of None (os.environ.get("...") of an unset variable).
    given = {
        name: value
        for name, value in options.items()
        if value != "" and (value is not None or name != "write_key")
    }
    completed = {**_module_settings(), **given}
    if not completed.get("write_key"):
        completed.pop("write_key", None)  # "" or None: the environment's, as Client reads it
    return completed


def _module_settings() -> dict[str, Any]:
    """The module-level settings that are set (None stands for the client's default)."""
    names = ("write_key", *segment_core._SETTINGS)
    values = {name: getattr(segment_core, name) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def keep_loggers_on() -> None:
    """Turn the library's loggers back on after the app configured logging.

    ``logging.config.dictConfig`` turns off every logger that exists as it runs
    unless ``disable_existing_loggers`` is False, and a configuration without that
    key means True (Django's ``LOGGING``, Flask's documented ``dictConfig`` before
    the app is made): the library's loggers exist by then when it was imported
    first. Its warnings (events not delivered) would then depend on the order of
    imports; the adapters call this as they set up, so they depend on none. A logger
    the app turned off itself before it imported the library stays off.
    """
    kept_off = segment_core._loggers_off_at_import
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (
            (name == "segment" or name.startswith("segment."))
            and isinstance(logger, logging.Logger)
            and name not in kept_off
        ):
            logger.disabled = False
