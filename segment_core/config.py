"""Client options: one snake_case name each, defaults, aliases and validation.

Every adapter speaks this vocabulary: Django as upper-case keys of
``settings.SEGMENT``, Flask as ``SEGMENT_<NAME>`` config keys, ASGI as keyword
arguments. A bad value raises :class:`ValueError` naming the option.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import importlib
import inspect
import logging
import math
import os
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, cast

from segment_core.batching import MAX_BATCH_MESSAGES
from segment_core.errors import InvalidMessage
from segment_core.hosts import check_host, check_write_key
from segment_core.masking import mask_secret
from segment_core.messages import Context
from segment_core.normalize import check_defaults

__all__ = [
    "ALIASES",
    "DEFAULT_HOST",
    "FROM_ENVIRONMENT",
    "MAX_SECONDS",
    "POSITIONAL_OPTIONS",
    "Config",
    "check_option",
    "import_callable",
    "is_async",
    "option_names",
    "options_over",
    "read_flag",
]

DEFAULT_HOST = "https://api.segment.io"
#: The spool's default bound: about 800,000 typical events.
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
SPOOL_FSYNC_POLICIES = ("never", "interval", "always")
#: The longest an option in seconds may be: 30 days. Past every practical use, and
#: within what thread waits take (``threading.TIMEOUT_MAX``: 49 days on Windows)
#: and socket timeouts (a larger one fails every request).
MAX_SECONDS = 30 * 24 * 60 * 60

#: analytics-python's option names, accepted for drop-in compatibility.
ALIASES: dict[str, str] = {
    "upload_size": "max_batch_size",
    "upload_interval": "flush_interval",
    "thread": "max_in_flight",
}

#: analytics-python's ``Client`` parameters after ``write_key``, in its positional order.
POSITIONAL_OPTIONS = (
    "host",
    "debug",
    "max_queue_size",
    "send",
    "on_error",
    "gzip",
    "max_retries",
    "sync_mode",
    "timeout",
    "proxies",
    "thread",
    "upload_size",
    "upload_interval",
    "log_handler",
    "oauth_client_id",
    "oauth_client_key",
    "oauth_key_id",
    "oauth_auth_server",
    "oauth_scope",
    "max_total_backoff_duration",
    "max_rate_limit_duration",
)

#: Segment's OAuth authorization server and the scope the Tracking API needs.
DEFAULT_OAUTH_AUTH_SERVER = "https://oauth2.segment.io"
DEFAULT_OAUTH_SCOPE = "tracking_api:write"

ErrorHandler = Callable[[Exception, list[dict[str, Any]]], None]
BeforeSend = Callable[[dict[str, Any]], "dict[str, Any] | None"]
MessageHook = Callable[[dict[str, Any]], None]
FailureHook = Callable[[dict[str, Any], Exception], None]
Backoff = Callable[[int], float]
Clock = Callable[[], dt.datetime]
IdGenerator = Callable[[], str]


class _Alias:
    """A name of analytics-python's for an option of :class:`Config`, read from the
    class (the default) or from an instance (its value)."""

    def __init__(self, option: str) -> None:
        self.option = option

    def __get__(self, config: Config | None, owner: type[Config]) -> Any:
        return getattr(owner if config is None else config, self.option)


@dataclass(frozen=True)
class Config:
    """Validated client options. Build it with :meth:`Config.from_options`."""

    write_key: str | None = None
    host: str = DEFAULT_HOST
    flush_at: int = 20
    flush_interval: float = 5.0
    max_batch_size: int = MAX_BATCH_MESSAGES
    max_queue_size: int = 10_000
    gzip: bool = True
    timeout: float = 15.0
    max_retries: int = 10
    retry_after: float | None = None
    max_total_backoff_duration: float = 600.0
    max_rate_limit_duration: float = 1800.0
    retry_backoff_min: float = 0.5
    retry_backoff_max: float = 60.0
    on_error: ErrorHandler | None = field(default=None, repr=False)
    send: bool = True
    sync_mode: bool = False
    default_context: Mapping[str, Any] | None = None
    default_integrations: Mapping[str, Any] | None = None
    shutdown_timeout: float = 5.0
    debug: bool = False
    before_send: BeforeSend | None = field(default=None, repr=False)
    max_in_flight: int = 1
    proxies: Mapping[str, str] | None = None
    log_handler: logging.Handler | None = field(default=None, repr=False)
    on_success: MessageHook | None = field(default=None, repr=False)
    on_failure: FailureHook | None = field(default=None, repr=False)
    backoff: Backoff | None = field(default=None, repr=False)
    now: Clock | None = field(default=None, repr=False)
    uid: IdGenerator | None = field(default=None, repr=False)
    oauth_client_id: str | None = None
    oauth_client_key: str | bytes | None = field(default=None, repr=False)
    oauth_key_id: str | None = None
    oauth_auth_server: str = DEFAULT_OAUTH_AUTH_SERVER
    oauth_scope: str = DEFAULT_OAUTH_SCOPE
    spool_dir: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    spool_fsync: str = "never"

    # analytics-python's names (Client.DefaultConfig's): each reads the option it
    # stands for, of the class (its default) or of a client's config.
    upload_size: ClassVar[_Alias] = _Alias("max_batch_size")
    upload_interval: ClassVar[_Alias] = _Alias("flush_interval")
    thread: ClassVar[_Alias] = _Alias("max_in_flight")

    @property
    def enabled(self) -> bool:
        """True when events leave the process (a write key is set and send is on)."""
        return bool(self.write_key) and self.send

    @property
    def oauth(self) -> bool:
        """True when requests authenticate with an OAuth access token (Bearer)."""
        return self.oauth_client_id is not None

    @property
    def batch_due_at(self) -> int:
        """How many waiting messages make a batch due: ``flush_at``, capped by the batch
        size and by :attr:`full_batch`."""
        return min(self.flush_at, self.full_batch)

    @property
    def full_batch(self) -> int:
        """How many waiting messages are a batch sent without waiting: ``max_batch_size``,
        or half of ``max_queue_size`` when that is smaller (a buffer that must wait to
        reach a batch would refuse messages meanwhile)."""
        return min(self.max_batch_size, max(1, self.max_queue_size // 2))

    @property
    def max_retry_after(self) -> float:
        """The longest ``Retry-After`` the client honours, in seconds."""
        return 300.0 if self.retry_after is None else self.retry_after

    @classmethod
    def from_options(cls, write_key: str | None = None, **options: Any) -> Config:
        """Validate ``options`` (aliases accepted) and fill in environment fallbacks."""
        values, given = _read_options(options)
        from_environment: dict[str, str] = {}  # option: the variable its value came from
        if write_key is None:
            write_key = os.environ.get("SEGMENT_WRITE_KEY") or None
            if write_key is not None:
                from_environment["write_key"] = "SEGMENT_WRITE_KEY"
        if values.get("host") is None:
            values["host"] = os.environ.get("SEGMENT_HOST") or DEFAULT_HOST
            if os.environ.get("SEGMENT_HOST"):
                from_environment["host"] = "SEGMENT_HOST"
        if values.get("spool_dir") is None:
            values["spool_dir"] = os.environ.get("SEGMENT_SPOOL_DIR") or None
            if values["spool_dir"] is not None:
                from_environment["spool_dir"] = "SEGMENT_SPOOL_DIR"
        if isinstance(values["spool_dir"], str) and values["spool_dir"].strip():
            # Absolute now, its links followed: a later chdir(), or a deploy that
            # re-points a link on the way (a release's "current"), must not move the
            # spool under a client writing to it. A leading "~" is the user's home, as a
            # shell would read it (an environment file's value is not).
            path = os.path.expanduser(values["spool_dir"])
            # (No path holds a NUL: refused below, naming the option.)
            values["spool_dir"] = os.path.abspath(path) if "\0" in path else os.path.realpath(path)
        config = cls(write_key=write_key, **values)
        try:
            config.validate()
        except ValueError as error:
            raise _as_written(error, given, from_environment) from None
        return config

    def validate(self) -> None:
        """Check every option; a :class:`ValueError` names the first that is wrong."""
        self._validate(parse_oauth_key=True)

    def _validate(self, *, parse_oauth_key: bool, together: bool = True) -> None:
        """``together``: also the rules of several options together."""
        check_write_key(self.write_key)
        check_host(self.host)
        _check_int("flush_at", self.flush_at, low=1, high=MAX_BATCH_MESSAGES)
        _check_number("flush_interval", self.flush_interval)
        _check_int("max_batch_size", self.max_batch_size, low=1, high=MAX_BATCH_MESSAGES)
        _check_int("max_queue_size", self.max_queue_size, low=1)
        _check_bool("gzip", self.gzip)
        _check_number("timeout", self.timeout, positive=True)
        _check_int("max_retries", self.max_retries, low=0)
        if self.retry_after is not None:
            _check_number("retry_after", self.retry_after)
        _check_number("max_total_backoff_duration", self.max_total_backoff_duration)
        _check_number("max_rate_limit_duration", self.max_rate_limit_duration)
        _check_number("retry_backoff_min", self.retry_backoff_min)
        _check_number("retry_backoff_max", self.retry_backoff_max)
        if together and self.retry_backoff_max < self.retry_backoff_min:
            raise ValueError(
                f"retry_backoff_max must be at least retry_backoff_min, got "
                f"retry_backoff_max={self.retry_backoff_max!r} and "
                f"retry_backoff_min={self.retry_backoff_min!r} (60 and 0.5 unless given)"
            )
        _check_callable("on_error", self.on_error, arguments=2)
        _check_bool("send", self.send)
        _check_bool("sync_mode", self.sync_mode)
        _check_mapping("default_context", self.default_context)
        _check_mapping("default_integrations", self.default_integrations)
        check_defaults(self.default_context, self.default_integrations)
        _check_number("shutdown_timeout", self.shutdown_timeout)
        _check_bool("debug", self.debug)
        _check_callable("before_send", self.before_send, arguments=1)
        _check_int("max_in_flight", self.max_in_flight, low=1, high=64)
        check_proxies(self.proxies)
        for name, arguments in _HOOK_ARGUMENTS.items():
            _check_callable(name, getattr(self, name), arguments=arguments)
        _check_oauth(self, parse_key=parse_oauth_key)
        if self.log_handler is not None and not isinstance(self.log_handler, logging.Handler):
            raise ValueError(
                f"log_handler must be a logging.Handler, got {type(self.log_handler).__name__}"
            )
        _check_spool(self.spool_dir, self.spool_max_bytes, self.spool_fsync)

    def __repr__(self) -> str:
        # Logs and tracebacks show a Config: never with its secrets.
        shown = ", ".join(f"{name}={value!r}" for name, value in self.public_dict().items())
        return f"Config({shown})"

    def public_dict(self) -> dict[str, Any]:
        """The options as a dict for display, with the write key masked."""
        shown: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "write_key" and value:
                value = mask_secret(value)
            elif f.name == "oauth_client_key" and value:
                value = "…"
            elif f.name == "proxies" and value:
                value = {name: _without_password(url) for name, url in value.items()}
            elif callable(value) or isinstance(value, logging.Handler):
                value = getattr(value, "__qualname__", type(value).__name__)
            shown[f.name] = value
        return shown


def check_option(name: str, value: Any) -> None:
    """Check one option on its own (a module-level setting, as it is assigned):
    ``ValueError`` naming it, ``TypeError`` for an unknown name.

    Neither the environment nor the other options take part, except that OAuth's three
    options are checked as if the other two were set: they are set one at a time, and
    whether all three are is checked as the client is built. So are the rules of
    several options together (``retry_backoff_max`` at least ``retry_backoff_min``):
    the others may be set after this one.
    """
    values, given = _read_options({name: value})
    # The other two stand in as set: only a key given here is a key to parse.
    parse_oauth_key = "oauth_client_key" in values
    if name in _OAUTH_TOGETHER:
        values = {**dict.fromkeys(_OAUTH_TOGETHER, "set"), **values}
    try:
        Config(**values)._validate(parse_oauth_key=parse_oauth_key, together=False)
    except ValueError as error:
        raise _as_written(error, given, {}) from None


def _read_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``options`` by their own names (an alias's target), as analytics-python reads
    them, and the name each was given as; a ``TypeError`` for an unknown name."""
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    names = option_names()
    for name, value in options.items():
        target = ALIASES.get(name, name)
        if target not in names:
            raise TypeError(_unknown_option_message(name))
        if target in given:  # an alias and its target, both given
            first, second = sorted((name, given[target]), key=lambda n: n == target)
            raise TypeError(f"{first} and {second} are the same option; pass only one")
        given[target] = name
        values[target] = value
    # analytics-python caps no upload_size (its batches stop at 500 KB): one over the
    # Spec's most a batch may hold asks for batches as large as they may be.
    if given.get("max_batch_size") == "upload_size":
        size = values["max_batch_size"]
        if type(size) is int and size > MAX_BATCH_MESSAGES:
            values["max_batch_size"] = MAX_BATCH_MESSAGES
    # analytics-python passes None for "the default" in its module-level settings.
    for name in ("oauth_auth_server", "oauth_scope", "timeout", *_FLAGS):
        if name in values and values[name] is None:
            del values[name]
    # An empty host is no host, as analytics-python and SEGMENT_HOST="" read it:
    # SEGMENT_HOST's, else Segment's API.
    if values.get("host") == "":
        del values["host"]
    # An OAuth setting read from an unset variable (os.environ.get("X", "")) is
    # not set, as analytics-python reads it.
    for name in _OAUTH_OPTIONS:
        if name in values and values[name] in ("", b""):
            del values[name]
    for name in _FLAGS:
        if name in values:
            values[name] = _as_flag(values[name])
    for name in (*_HOOKS, "log_handler"):
        value = values.get(name)
        # A false value is no hook, as analytics-python reads it (its tests set
        # on_error = False); a hook named by its dotted path, as the web options'
        # hooks are (settings files hold text: {"BEFORE_SEND": "myapp.analytics.scrub"}).
        if type(value) in (bool, int, str) and not value:
            del values[name]
        elif isinstance(value, str) and name != "log_handler":
            values[name] = import_callable(name, value)
    if isinstance(values.get("default_context"), Context):
        values["default_context"] = _typed_context(values["default_context"])
    if isinstance(values.get("timeout"), tuple):
        values["timeout"] = _timeout_pair(values["timeout"], given.get("timeout", "timeout"))
    if isinstance(values.get("spool_dir"), os.PathLike):
        values["spool_dir"] = os.fspath(values["spool_dir"])
    return values, given


def option_names() -> frozenset[str]:
    """Every option name :class:`Config` accepts (aliases excluded)."""
    return frozenset(f.name for f in fields(Config))


def options_over(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Options ``top`` over ``base`` (an adapter's keywords over its configuration):
    an option of ``top`` replaces ``base``'s, whichever of its names (``upload_size``
    or ``max_batch_size``) each uses."""
    replaced = {ALIASES.get(name, name) for name in top}
    kept = {name: value for name, value in base.items() if ALIASES.get(name, name) not in replaced}
    return {**kept, **top}


def _unknown_option_message(name: str) -> str:
    close = closest_name(name, sorted(option_names() | set(ALIASES)))
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown option {name!r}{hint}"


#: What other Segment libraries (Go's ``Config``, analytics.js, Node's) and habit call
#: an option: the hint for an unknown name points to ours.
_NAMES_ELSEWHERE = {
    "endpoint": "host",
    "api_host": "host",
    "apihost": "host",
    "url": "host",
    "key": "write_key",
    "writekey": "write_key",
    "api_key": "write_key",
    "batch_size": "flush_at",
    "batchsize": "flush_at",
    "interval": "flush_interval",
    "verbose": "debug",
}


def closest_name(name: str, candidates: list[str]) -> str | None:
    """The candidate ``name`` most likely meant: the one it names after a ``segment_``
    prefix (``SEGMENT_WRITE_KEY`` in Django's ``SEGMENT`` is ``WRITE_KEY``, not the
    look-alike ``BROWSER_WRITE_KEY``), ours for a name other Segment libraries use
    (``endpoint``: ``host``), else the closest spelling; None for none."""
    if name[:8].lower() == "segment_" and name[8:] in candidates:
        return name[8:]
    bare = name[8:] if name[:8].lower() == "segment_" else name
    ours = _NAMES_ELSEWHERE.get(bare.lower())
    if ours is not None:
        for candidate in candidates:
            if candidate.lower() in (ours, "segment_" + ours):
                return candidate
    close = difflib.get_close_matches(name, candidates, n=1)
    return close[0] if close else None


#: In the error of a value that came from an environment variable, before its name.
FROM_ENVIRONMENT = " (from the environment variable "


def _as_written(
    error: ValueError, given: Mapping[str, str], from_environment: Mapping[str, str]
) -> ValueError:
    """``error`` naming the option as the caller wrote it (an alias, not its target),
    or the environment variable its value came from."""
    text = str(error)
    for target, variable in from_environment.items():
        if text.startswith(target + " "):
            return ValueError(f"{text}{FROM_ENVIRONMENT}{variable})")
    for target, name in given.items():
        if name != target and text.startswith(target + " "):
            return ValueError(name + text[len(target) :])
    return error


def _type_name(value: object) -> str:
    return type(value).__name__


#: The options that are True or False.
_FLAGS = ("gzip", "send", "sync_mode", "debug")
#: The options that are functions the client calls.
_HOOKS = ("on_error", "before_send", "on_success", "on_failure", "backoff", "now", "uid")
_OAUTH_OPTIONS = (
    "oauth_client_id",
    "oauth_client_key",
    "oauth_key_id",
    "oauth_auth_server",
    "oauth_scope",
)
#: The OAuth options that go together: all three, or none.
_OAUTH_TOGETHER = ("oauth_client_id", "oauth_client_key", "oauth_key_id")


def _timeout_pair(pair: tuple[Any, ...], name: str) -> float:
    """requests' ``(connect, read)`` timeout as one number: their sum, a ``None`` part
    (requests: no limit) counting as the default ``timeout``, as ``timeout=None`` does."""
    parts = [Config.timeout if part is None else part for part in pair]
    if len(parts) != 2 or not all(
        isinstance(part, (int, float)) and not isinstance(part, bool) and part > 0 for part in parts
    ):
        raise ValueError(
            f"{name} must be a number of seconds > 0 or a (connect, read) pair of them "
            f"(None for the default), got {pair!r}"
        )
    total = parts[0] + parts[1]
    _check_number(name, total)  # before float(), which cannot take every int
    return float(total)


def read_flag(name: str, value: object) -> bool:
    """A yes/no option's value: True, False, 0 or 1; a ValueError naming ``name`` for
    anything else. (None, the default, is the caller's to replace.)"""
    flag = _as_flag(value)
    _check_bool(name, flag)
    assert isinstance(flag, bool)
    return flag


def _as_flag(value: object) -> object:
    """0 and 1 as analytics-python reads them, False and True (``send =
    int(os.environ["SEND"])``); any other value as it is, for the check to refuse."""
    if type(value) is int and value in (0, 1):
        return bool(value)
    return value


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False (or 0 or 1), got {value!r}")


def _check_int(name: str, value: object, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")


def _check_number(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    # NaN compares false with everything: no check would hold. (An int is finite, and
    # math.isfinite() cannot take one past a float's range.)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {_number_text(value)}")
    if value > MAX_SECONDS:
        raise ValueError(
            f"{name} must be at most {MAX_SECONDS} seconds (30 days), got {_number_text(value)}"
        )


def _number_text(value: float) -> str:
    """``value`` for an error message (Python refuses to write an int of over 4,300 digits)."""
    if isinstance(value, int) and abs(value) > 10**1000:
        return f"an integer of {value.bit_length()} bits"
    return str(value)


#: The positional arguments the client calls each of these hooks with.
_HOOK_ARGUMENTS = {"on_success": 1, "on_failure": 2, "backoff": 1, "now": 0, "uid": 0}


def _check_callable(name: str, value: object, *, arguments: int) -> None:
    """A hook: callable, with that many positional arguments (when its signature
    can be read): one that can never be called so fails at every call."""
    if value is None:
        return
    if not callable(value):
        raise ValueError(
            f"{name} must be callable (or a dotted path to one), got {_type_name(value)}"
        )
    if is_async(value):  # its coroutine would be dropped: the hook would never run
        raise ValueError(
            f"{name} must be a plain function, not async def: the client calls it from "
            "its own thread, where nothing awaits it"
        )
    check_arguments(name, value, arguments=arguments)


def check_arguments(name: str, value: Callable[..., Any], *, arguments: int) -> None:
    """ValueError naming ``name`` if the hook ``value`` cannot be called with that many
    positional arguments (when its signature can be read: not one it declares itself
    in ``__signature__``, which a wrapper that supplies arguments may set to its
    wrapped function's)."""
    if getattr(value, "__signature__", None) is not None:
        return
    try:
        # The signature as called: a decorator's own, which may supply an argument.
        signature = inspect.signature(value, follow_wrapped=False)
    except (TypeError, ValueError):  # a builtin without one: not checked
        return
    try:
        signature.bind(*range(arguments))
    except TypeError as error:
        raise ValueError(
            f"{name} is called with {arguments} positional argument"
            f"{'' if arguments == 1 else 's'}; {_type_name(value)} {signature} cannot take "
            f"them: {error}"
        ) from None


def is_async(hook: object, depth: int = 0) -> bool:
    """Whether calling ``hook`` returns a coroutine (functions, partials, callable objects,
    and partials of those)."""
    while isinstance(hook, functools.partial):
        hook = hook.func
    found = _mock_of(hook)
    if found is not None:  # a test's stand-in: async as its spec, or what it calls, is
        stand_in, module = found
        if isinstance(stand_in, _async_mock_class(module)):
            return True
        if depth >= _MAX_STAND_INS:
            return False
        return any(
            called is not None and called is not stand_in and is_async(called, depth + 1)
            for called in (stand_in.side_effect, getattr(stand_in, "_mock_wraps", None))
        )
    if hook is None or isinstance(hook, type):  # calling a class makes an instance
        return False
    return _is_coroutine_function(hook) or _is_coroutine_function(getattr(hook, "__call__", None))  # noqa: B004


def _is_coroutine_function(value: object) -> bool:
    try:
        return inspect.iscoroutinefunction(value)
    except Exception:  # an object that claims to be a function and is none
        return False


#: The modules of mock objects: the standard library's, and the ``mock`` package
#: (pytest-mock's with ``mock_use_standalone_module``).
_MOCK_MODULES = ("unittest.mock", "mock")
#: How deep stand-ins that call stand-ins (``side_effect``, ``wraps``) are followed.
_MAX_STAND_INS = 4


def _async_mock_class(module: Any) -> type:
    """The class every async stand-in of a mock module is: ``AsyncMockMixin`` (the
    ``mock`` package keeps it in its ``mock.mock`` module), else ``AsyncMock``."""
    for where in (module, getattr(module, "mock", None)):
        found = getattr(where, "AsyncMockMixin", None)
        if isinstance(found, type):
            return found
    return cast(type, module.AsyncMock)


def _mock_of(hook: object) -> tuple[Any, Any] | None:
    """The mock object ``hook`` is (``MagicMock(spec=a_function)``, whose every
    attribute answers, ``__code__`` too) or stands in front of (what
    ``create_autospec(a_function)`` makes), and its module; None for anything else."""
    for name in _MOCK_MODULES:
        module: Any = sys.modules.get(name)
        base = getattr(module, "NonCallableMock", None) if module is not None else None
        if not isinstance(base, type):
            continue
        if isinstance(hook, base):
            return hook, module
        if isinstance(hook, types.FunctionType):
            inner = getattr(hook, "mock", None)
            if isinstance(inner, base):
                return inner, module
    return None


def import_callable(name: str, path: str) -> Callable[..., Any]:
    """Import ``"package.module.attr"`` or ``"package.module:attr"`` for option ``name``;
    after a ``:``, a dotted path of attributes (``"myapp.hooks:Scrubber.scrub"``), as
    entry points write one."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{name}: {path!r} is not a dotted path to a callable")
    if module_name.startswith("."):
        # Relative to nothing: settings are not a package.
        raise ValueError(
            f"{name}: {path!r} is a relative path; write the module's full dotted path "
            "(e.g. 'myapp.hooks:function')"
        )
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split(".") if sep else (attr,):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{name}: cannot import {path!r}: {exc}") from None
    except Exception as exc:  # the module itself failed as it was imported
        raise ValueError(f"{name}: cannot import {path!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise ValueError(f"{name}: {path!r} is not callable")
    return target


_PROXY_SCHEMES = ("http", "https")


def check_proxies(proxies: object) -> None:
    """``proxies`` as ``requests`` reads them: ``{"https": "host:port", ...}``.

    Keys are a scheme (``http``, ``https``, ``all``), optionally with a host
    (``https://api.segment.io``), or ``no_proxy``; values are proxy URLs, where a
    missing scheme means ``http://`` (as in analytics-python and ``requests``), or
    None or ``""`` for no proxy.
    """
    if proxies is None:
        return
    _check_mapping("proxies", proxies)
    assert isinstance(proxies, Mapping)
    for key, value in proxies.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str)):
            raise ValueError(
                f"proxies must map strings to strings, got {key!r}: {_type_name(value)}"
            )
        # None or "": no proxy for that key, as requests reads {"https": None}.
        if key == "no_proxy" or not value:
            continue
        scheme = key.split("://", 1)[0]
        if scheme not in (*_PROXY_SCHEMES, "all"):
            raise ValueError(
                f"proxies: unknown key {key!r}; use 'http', 'https', 'all', "
                "'<scheme>://<host>' or 'no_proxy'"
            )
        proxy_url(value)


def proxy_url(value: str, *, name: str = "proxies") -> str:
    """The proxy URL with its scheme (``http://`` when none is given); ValueError if bad.

    ``name`` is where the value came from (the option, or an environment variable),
    for the error; a password in the URL is never shown.
    """
    from urllib.parse import urlsplit

    from urllib3.util import parse_url

    url = value.strip()
    if not url:
        raise ValueError(f"{name}: a proxy URL must not be empty")
    shown = _without_password(url)
    if not url.isprintable() or " " in url:
        raise ValueError(f"{name}: {shown!r} must not contain spaces or control characters")
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
        parse_url(url)  # what the connection pool reads it with: its refusals too
    except ValueError as error:
        reason = str(error).replace(url, _without_password(url))  # urllib3 quotes the URL
        raise ValueError(f"{name}: {shown!r} is not a proxy URL ({reason})") from None
    if parts.scheme.startswith("socks"):
        raise ValueError(f"{name}: {shown!r} is a SOCKS proxy; only HTTP(S) proxies are supported")
    if parts.scheme not in _PROXY_SCHEMES:
        raise ValueError(
            f"{name}: {shown!r} has the scheme {parts.scheme!r}; use http:// or https://"
        )
    if not parts.hostname:
        raise ValueError(f"{name}: {shown!r} has no host")
    if port == 0:
        raise ValueError(f"{name}: {shown!r} has port 0")
    return url


def _without_password(url: str) -> str:
    head, at, host = url.rpartition("@")
    if not at:
        return url
    scheme, _, userinfo = head.rpartition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:…@{host}" if scheme else f"{user}:…@{host}"


def _check_oauth(config: Config, *, parse_key: bool) -> None:
    given = {
        name: getattr(config, name) for name in _OAUTH_TOGETHER if getattr(config, name) is not None
    }
    for name in ("oauth_auth_server", "oauth_scope"):
        if not isinstance(getattr(config, name), str) or not getattr(config, name):
            raise ValueError(f"{name} must be a non-empty string, got {getattr(config, name)!r}")
    check_host(config.oauth_auth_server, name="oauth_auth_server")
    if not given:
        return
    missing = [name for name in _OAUTH_TOGETHER if name not in given]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} must be set too: OAuth needs oauth_client_id, "
            "oauth_client_key and oauth_key_id together"
        )
    for name in ("oauth_client_id", "oauth_key_id"):
        if not isinstance(given[name], str) or not given[name]:
            raise ValueError(f"{name} must be a non-empty string, got {given[name]!r}")
    key = config.oauth_client_key
    if not isinstance(key, (str, bytes)) or not key:
        raise ValueError(
            f"oauth_client_key must be a PEM private key (str or bytes), got {_type_name(key)}"
        )
    if parse_key:
        # Parsed now, not as the first batch is sent: a key that is no key is refused
        # where it is configured (an app's start-up, its system checks).
        from segment_core.oauth import load_private_key

        load_private_key(key)


def _typed_context(context: Context) -> dict[str, Any]:
    """A typed ``default_context`` as it encodes; ValueError naming the option."""
    try:
        return context.to_dict()
    except InvalidMessage as error:
        raise ValueError(f"default_context: {error}") from None


def _check_mapping(name: str, value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict, got {_type_name(value)}")


def _check_spool(directory: object, max_bytes: object, fsync: object) -> None:
    if directory is not None and (
        not isinstance(directory, str) or not directory.strip() or "\0" in directory
    ):
        raise ValueError(f"spool_dir must be a directory path, got {directory!r}")
    _check_int("spool_max_bytes", max_bytes, low=1024 * 1024)
    if fsync not in SPOOL_FSYNC_POLICIES:
        choices = ", ".join(repr(p) for p in SPOOL_FSYNC_POLICIES)
        raise ValueError(f"spool_fsync must be one of {choices}, got {fsync!r}")
