"""Segment analytics for Python: a fast, bounded, fork-safe batching client.

A drop-in superset of analytics-python's API::

    import segment_core as analytics

    analytics.write_key = "YOUR_WRITE_KEY"
    analytics.track("user-1", "Signed Up", {"plan": "pro"})
    analytics.flush()

or an explicit client::

    from segment_core import Client

    client = Client("YOUR_WRITE_KEY")
    client.track(user_id="user-1", event="Signed Up")

PYTEST_DONT_REWRITE (pytest's assertion rewriting leaves the package alone).
"""

from __future__ import annotations

import logging
import os
import sys
import types
import weakref
from collections.abc import Callable
from typing import Any

from segment_core import _forks, lifecycle, signals
from segment_core._version import VERSION
from segment_core.builders import Integrations, Properties, Traits
from segment_core.client import Client
from segment_core.config import ALIASES, DEFAULT_HOST, Config, check_option, option_names
from segment_core.errors import DeliveryError, InvalidMessage
from segment_core.messages import Alias, Context, Group, Identify, Page, Screen, Track
from segment_core.scope import Analytics, analytics

__version__ = VERSION

__all__ = [
    "VERSION",
    "Alias",
    "Analytics",
    "Client",
    "Config",
    "Context",
    "DeliveryError",
    "Group",
    "Identify",
    "Integrations",
    "InvalidMessage",
    "Page",
    "Properties",
    "Screen",
    "Track",
    "Traits",
    "alias",
    "analytics",
    "flush",
    "get_client",
    "group",
    "identify",
    "join",
    "page",
    "screen",
    "shutdown",
    "signals",
    "track",
]

# Module-level settings, read when the default client is first needed (as in
# analytics-python), each the client's default until set. None means that default
# too (host: SEGMENT_HOST, else Segment's API).
write_key: str | None = None
host: str | None = None
on_error: Any = None
debug: bool = False
send: bool = True
sync_mode: bool = False
max_queue_size: int | None = Config.max_queue_size
gzip: bool | None = Config.gzip
timeout: float | None = Config.timeout
max_retries: int | None = Config.max_retries
log_handler: Any = None
oauth_client_id: str | None = None
oauth_client_key: str | bytes | None = None
oauth_key_id: str | None = None
oauth_auth_server: str | None = Config.oauth_auth_server
oauth_scope: str | None = Config.oauth_scope

default_client: Client | None = None
#: What module-level calls use while no write key is set: a disabled client, kept
#: apart so that the first call once a key is set (or a framework's configuration)
#: makes the real default client. An adapter's client without a key takes this place
#: (see segment_core.adapters.offer_as_default): what the app configured it for (test
#: mode, send=False) holds for the module-level calls too.
_keyless_client: Client | None = None
#: Whether ``_keyless_client`` is an adapter's, which a later adapter's leaves in place.
_keyless_is_adapters = False
#: The default clients made here from the module-level settings (not one the app
#: built and assigned): an adapter without client options diverts them in tests.
_made_from_settings: weakref.WeakSet[Client] = weakref.WeakSet()
#: Called with each such client as it is made, before its first message: an adapter
#: that sends through it gives it its test mode (Django's ``SEGMENT = {}``).
_on_made_from_settings: list[Callable[[Client], None]] = []
#: What module-level calls use while an environment variable they read is unusable:
#: the settings and variables it was made for, and a client that discards.
_misconfigured: tuple[tuple[object, ...], Client] | None = None
#: Held while the module-level client is built (with a spool, that starts its thread):
#: a forked child makes its own at its first use, once it could monkey-patch (gevent,
#: eventlet), so that a green thread building it lets the others wait their turn.
_default_lock = _forks.ProcessLock()
_logger = logging.getLogger("segment.core")

_SETTINGS = (
    "host",
    "on_error",
    "debug",
    "send",
    "sync_mode",
    "max_queue_size",
    "gzip",
    "timeout",
    "max_retries",
    "log_handler",
    "oauth_client_id",
    "oauth_client_key",
    "oauth_key_id",
    "oauth_auth_server",
    "oauth_scope",
)


#: Functions naming the client of where the call is made (a Flask app's, in its
#: app context): asked first by the module-level calls, each answer None or a client.
_client_finders: list[Callable[[], Client | None]] = []


def get_client() -> Client:
    """The client of where the call is made (a Flask app's own, in its app context),
    else the process-wide default client, created on first use from the module
    settings. Until they (or ``SEGMENT_WRITE_KEY``) give a write key, the client of
    an adapter set up without one (diverted in tests, quiet with ``send=False``),
    else a disabled client that discards, with one warning; :data:`default_client`
    stays None."""
    for find in _client_finders:
        found = find()
        if found is not None:
            return found
    client = default_client
    if client is None:
        client = _client_for_module_calls()
    elif client._sends_in_tests and _when_default_sends_in_tests:
        # In tests: an app whose test mode came since (Flask's TESTING set after
        # init_app) may take the module-level calls from one sending for real.
        for hook in _when_default_sends_in_tests:
            hook()
        client = default_client or client
    return client


#: Asked by the module-level calls while the default client sends in tests (see
#: segment_core.adapters).
_when_default_sends_in_tests: list[Callable[[], None]] = []


def _client_for_module_calls() -> Client:
    """:func:`_default_or_keyless_client`, or while ``SEGMENT_WRITE_KEY`` or
    ``SEGMENT_HOST`` is unusable (a key read from a file, with its line break), or
    the settings are wrong together (the OAuth options, one missing or a key that is
    no PEM), a client that discards, whose one ERROR names the problem: every call of
    a view would otherwise raise it. (An adapter raises it as the app starts.)"""
    global _misconfigured
    misconfigured = _misconfigured
    if misconfigured is not None and misconfigured[0] == _settings_read():
        return misconfigured[1]
    try:
        return _default_or_keyless_client()
    except ValueError as error:  # the environment's, or settings only wrong together
        with _default_lock:
            settings = _settings_read()
            misconfigured = _misconfigured
            if misconfigured is None or misconfigured[0] != settings:
                misconfigured = _misconfigured = (settings, _MisconfiguredClient(error))
        return misconfigured[1]


def _settings_read() -> tuple[object, ...]:
    """What the module-level client is built from: the settings and the environment."""
    return (
        write_key,
        *(globals()[name] for name in _SETTINGS),
        os.environ.get("SEGMENT_WRITE_KEY"),
        os.environ.get("SEGMENT_HOST"),
        os.environ.get("SEGMENT_SPOOL_DIR"),
    )


class _KeylessClient(Client):
    """What the module-level calls use while no write key is set: it says so at its
    first discarded call, not as it is made (an adapter's set-up asks for it before
    a key set later, at a worker's start-up, makes the default client)."""

    _made = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._made = True

    def _warn_disabled(self) -> None:
        if self._made:
            super()._warn_disabled()

    def _drop(self, message: dict[str, Any], reason: str) -> None:
        if reason == "disabled":
            self._warn_disabled()
        super()._drop(message, reason)


class _MisconfiguredClient(Client):
    """Discards every call, and says once why: ``problem``, an environment variable's,
    or the module settings' together (``oauth_client_id`` without ``oauth_key_id``)."""

    def __init__(self, problem: ValueError) -> None:
        self._problem = problem
        # Nothing of the environment (the key, the host, the spool): it is what is
        # wrong. Without a key no spool is opened: the directory named is never used.
        super().__init__("", host=DEFAULT_HOST, spool_dir=os.sep)

    def _warn_disabled(self) -> None:
        if not self._warned_disabled:
            self._warned_disabled = True
            _logger.error(
                "Segment: %s; the module-level calls discard their events until it is fixed",
                self._problem,
            )


def _default_or_keyless_client() -> Client:
    """Build the default client from the module settings, or while they hold no
    write key (nor the environment), reuse the client standing in: an adapter's
    without a key, else one disabled client made here (it warns once)."""
    global default_client, _keyless_client, _keyless_is_adapters
    with _default_lock:
        if default_client is not None:
            return default_client
        if _keyless_client is not None and not (write_key or os.environ.get("SEGMENT_WRITE_KEY")):
            return _keyless_client
        options = {name: globals()[name] for name in _SETTINGS}
        made = Client if write_key or os.environ.get("SEGMENT_WRITE_KEY") else _KeylessClient
        client = made(write_key, **{k: v for k, v in options.items() if v is not None})
        if client.config.write_key:
            _made_from_settings.add(client)
            for hook in _on_made_from_settings:
                try:
                    hook(client)
                except Exception:  # the client works all the same
                    _logger.exception("Segment: a hook on the default client being made failed")
            default_client = client
            _keyless_client = None
        else:
            _keyless_client, _keyless_is_adapters = client, False
        return client


def identify(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """:meth:`Client.identify` on the default client."""
    return get_client().identify(*args, **kwargs)


def track(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """:meth:`Client.track` on the default client."""
    return get_client().track(*args, **kwargs)


def page(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """:meth:`Client.page` on the default client."""
    return get_client().page(*args, **kwargs)


def screen(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """:meth:`Client.screen` on the default client."""
    return get_client().screen(*args, **kwargs)


def group(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """:meth:`Client.group` on the default client."""
    return get_client().group(*args, **kwargs)


def alias(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """:meth:`Client.alias` on the default client."""
    return get_client().alias(*args, **kwargs)


def flush(timeout: float | None = None) -> bool:
    """Send what the default client holds and wait for it (at most ``timeout`` seconds).

    Like every module-level call, it creates :data:`default_client` when there is none
    and a write key is set.
    """
    return get_client().flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the default client."""
    return get_client().shutdown(timeout)


def join(timeout: float | None = None) -> bool:
    """analytics-python's name for :func:`shutdown`."""
    return shutdown(timeout)


class _SettingsModule(types.ModuleType):
    """This package, whose ``write_key`` set on the main thread readies SIGTERM.

    A script may set the module-level settings on its main thread and make every
    call from worker threads (an executor's, a queue consumer's), where no signal
    handler can be installed: setting the key is the moment the process has
    something to deliver for, and the last it spends on the main thread.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if value is not None and name in _CHECKED_SETTINGS:
            # Refused here, where it is set: not by every call once it is read.
            check_option(name, value)
        elif name in _CLIENT_OPTIONS_ONLY:
            _logger.warning(
                "segment_core.%s is no module-level setting and changes nothing: give it "
                "to Client(...), or in the framework's settings",
                name,
            )
        super().__setattr__(name, value)
        if name == "write_key" and value:
            lifecycle.chain_sigterm()


_CHECKED_SETTINGS = frozenset({"write_key", *_SETTINGS})
#: The client's options that no module-level setting stands for (upload_size, proxies).
_CLIENT_OPTIONS_ONLY = (option_names() | ALIASES.keys()) - _CHECKED_SETTINGS


sys.modules[__name__].__class__ = _SettingsModule
#: The library's loggers the app turned off before it imported the library (no
#: dictConfig() did: they did not exist then), which adapters leave off.
_loggers_off_at_import = frozenset(
    name
    for name, logger in list(logging.Logger.manager.loggerDict.items())
    if (name == "segment" or name.startswith("segment."))
    and isinstance(logger, logging.Logger)
    and logger.disabled
)
# The import has ended: a SIGTERM now delivers (see lifecycle._on_sigterm).
_imported = True
