"""Web options: one snake_case name each, validated once, shared by every adapter.

Django reads them as upper-case keys of ``settings.SEGMENT``, Flask as
``SEGMENT_<NAME>`` config keys, ASGI as keyword arguments. All of them go through
:meth:`WebOptions.from_mapping` (or :func:`split_options` for a flat dict that
also holds client options), so a bad value fails the same way everywhere: a
:class:`ValueError` that names the option.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = [
    "DEFAULT_EXCLUDE_PATHS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "ONE_YEAR",
    "WebOptions",
    "option_names",
    "split_options",
]

ONE_YEAR = 365 * 24 * 60 * 60

#: Paths that are never page views: assets, crawler files and health checks.
#: Each is a regular expression searched in the request path.
DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = (
    r"^/static/",
    r"^/media/",
    r"^/favicon\.ico$",
    r"^/robots\.txt$",
    r"^/apple-touch-icon[^/]*\.png$",
    r"^/\.well-known/",
    r"(?:^|/)(?:health|healthz|healthcheck|ready|readyz|live|livez|ping)/?$",
)

#: Query parameters whose values are replaced by ``REDACTED`` (names compared
#: case-insensitively) in ``url``, ``search`` and ``referrer``.
DEFAULT_REDACT_QUERY_PARAMS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "code",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "auth",
    "session",
    "email",
)

PAGE_NAME_MODES = ("route", "template", "path")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PageName = Literal["route", "template", "path"] | Callable[[Any], Any]
Hook = Callable[..., Any]

_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True)
class WebOptions:
    """How adapters turn requests into context, identity and automatic page calls.

    Hooks receive the framework's own request object (Django ``HttpRequest``, Flask
    ``request``, Starlette ``Request``); ``page_filter`` and ``page_properties``
    also get the response. A hook may be given as a dotted path
    (``"myapp.analytics.user_id"``). A hook that raises is logged and treated as
    "no answer": no page call, no extra properties, no user id, no consent.

    >>> WebOptions.from_mapping({"PAGE_CALLS": False}).page_calls
    False
    """

    page_calls: bool = True
    page_methods: tuple[str, ...] = ("GET",)
    exclude_paths: tuple[str | re.Pattern[str], ...] = DEFAULT_EXCLUDE_PATHS
    skip_bots: bool = True
    page_name: PageName = "route"
    page_filter: Hook | None = None
    page_properties: Hook | None = None
    user_id: Hook | None = None
    consent: Hook | None = None
    honor_gpc: bool = True
    honor_dnt: bool = False
    trusted_proxies: int | tuple[IPNetwork, ...] = 0
    collect_ip: bool = True
    anonymize_ip: bool = False
    redact_query_params: tuple[str, ...] = DEFAULT_REDACT_QUERY_PARAMS
    set_cookie: bool = True
    cookie_name: str = "ajs_anonymous_id"
    user_cookie_name: str = "ajs_user_id"
    cookie_domain: str | None = None
    cookie_format: Literal["raw", "quoted"] = "raw"
    cookie_max_age: int = ONE_YEAR

    # Derived once, for the hot path.
    exclude_patterns: tuple[re.Pattern[str], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    redacted_names: frozenset[str] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )

    def __post_init__(self) -> None:
        for name, normalize in _NORMALIZERS.items():
            object.__setattr__(self, name, normalize(name, getattr(self, name)))
        patterns = tuple(re.compile(p) for p in self.exclude_paths)
        object.__setattr__(self, "exclude_patterns", patterns)
        object.__setattr__(self, "redacted_names", frozenset(self.redact_query_params))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> WebOptions:
        """Build options from a dict whose keys are option names in any case.

        An unknown key raises :class:`ValueError` with the closest valid name.
        """
        values: dict[str, Any] = {}
        names = option_names()
        for key, value in mapping.items():
            name = str(key).lower()
            if name not in names:
                raise ValueError(_unknown_message(str(key), names))
            values[name] = value
        return cls(**values)


def option_names() -> frozenset[str]:
    """Every option :class:`WebOptions` accepts."""
    return frozenset(f.name for f in fields(WebOptions) if f.init)


def split_options(mapping: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one flat dict into ``(client_kwargs, web_kwargs)``; keys are lower-cased.

    Client options are the names :class:`segment_core.config.Config` accepts
    (analytics-python aliases included). An unknown key raises :class:`ValueError`
    with the closest name from both sets.
    """
    from segment_core.config import ALIASES
    from segment_core.config import option_names as client_option_names

    client_names = client_option_names() | set(ALIASES)
    web_names = option_names()
    client: dict[str, Any] = {}
    web: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key).lower()
        if name in web_names:
            web[name] = value
        elif name in client_names:
            client[name] = value
        else:
            raise ValueError(_unknown_message(str(key), web_names | client_names))
    return client, web


def _unknown_message(key: str, names: Iterable[str]) -> str:
    upper = key.isupper()
    candidates = sorted(n.upper() if upper else n for n in names)
    close = difflib.get_close_matches(key, candidates, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown option {key!r}{hint}"


# -- normalizers: (option name, given value) -> stored value, or ValueError ---------


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    items = tuple(value) if isinstance(value, Iterable) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    return items


def _methods(name: str, value: object) -> tuple[str, ...]:
    return tuple(m.upper() for m in _strings(name, value))


def _lower_strings(name: str, value: object) -> tuple[str, ...]:
    return tuple(s.lower() for s in _strings(name, value))


def _patterns(name: str, value: object) -> tuple[str | re.Pattern[str], ...]:
    items = (value,) if isinstance(value, (str, re.Pattern)) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"{name} must be a list of regular expressions, got {value!r}")
    out: list[str | re.Pattern[str]] = []
    for item in items:
        if isinstance(item, re.Pattern):
            out.append(item)
            continue
        if not isinstance(item, str):
            raise ValueError(f"{name} must be a list of regular expressions, got {item!r}")
        try:
            re.compile(item)
        except re.error as exc:
            raise ValueError(f"{name}: {item!r} is not a valid regular expression: {exc}") from None
        out.append(item)
    return tuple(out)


def _hook(name: str, value: object) -> Hook | None:
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        return import_callable(name, value)
    raise ValueError(f"{name} must be a callable or a dotted path to one, got {value!r}")


def _page_name(name: str, value: object) -> PageName:
    if value in PAGE_NAME_MODES:
        return value  # type: ignore[return-value]
    if callable(value):
        return value
    if isinstance(value, str) and ("." in value or ":" in value):
        return import_callable(name, value)
    modes = ", ".join(repr(m) for m in PAGE_NAME_MODES)
    raise ValueError(f"{name} must be one of {modes} or a callable, got {value!r}")


def import_callable(name: str, path: str) -> Hook:
    """Import ``"package.module.attr"`` or ``"package.module:attr"`` for option ``name``."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{name}: {path!r} is not a dotted path to a callable")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{name}: cannot import {path!r}: {exc}") from None
    if not callable(target):
        raise ValueError(f"{name}: {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def _trusted_proxies(name: str, value: object) -> int | tuple[IPNetwork, ...]:
    """A hop count, or networks: a list, or one string with commas (from an env var)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        return value
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        networks: list[IPNetwork] = []
        for item in value:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except (TypeError, ValueError):
                raise ValueError(f"{name}: {item!r} is not an IP address or network") from None
        return tuple(networks)
    raise ValueError(
        f"{name} must be a number of proxies or a list of networks (e.g. ['10.0.0.0/8']), "
        f"got {value!r}"
    )


def _cookie_name(name: str, value: object) -> str:
    if not isinstance(value, str) or not _COOKIE_NAME.match(value):
        raise ValueError(f"{name} must be a valid cookie name, got {value!r}")
    return value


def _cookie_domain(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or re.search(r"[\s;,]", value):
        raise ValueError(f"{name} must be a domain such as '.example.com' or None, got {value!r}")
    return value


def _cookie_format(name: str, value: object) -> str:
    if value not in ("raw", "quoted"):
        raise ValueError(f"{name} must be 'raw' or 'quoted', got {value!r}")
    return value


def _max_age(name: str, value: object) -> int:
    if isinstance(value, dt.timedelta):
        value = int(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return int(value)


_NORMALIZERS: dict[str, Callable[[str, Any], Any]] = {
    "page_calls": _bool,
    "page_methods": _methods,
    "exclude_paths": _patterns,
    "skip_bots": _bool,
    "page_name": _page_name,
    "page_filter": _hook,
    "page_properties": _hook,
    "user_id": _hook,
    "consent": _hook,
    "honor_gpc": _bool,
    "honor_dnt": _bool,
    "trusted_proxies": _trusted_proxies,
    "collect_ip": _bool,
    "anonymize_ip": _bool,
    "redact_query_params": _lower_strings,
    "set_cookie": _bool,
    "cookie_name": _cookie_name,
    "user_cookie_name": _cookie_name,
    "cookie_domain": _cookie_domain,
    "cookie_format": _cookie_format,
    "cookie_max_age": _max_age,
}
