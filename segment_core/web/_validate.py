"""Validation of each web option: ``(name, given value) -> stored value`` or ValueError.

Each error names the option, so the same message serves keyword arguments,
Flask config keys and Django settings.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from segment_core.config import check_arguments, import_callable, is_async, read_flag
from segment_core.hosts import ascii_host_name
from segment_core.jsonvalues import short_repr
from segment_core.web._browser_options import BROWSER_NORMALIZERS
from segment_core.web._request import decoded_path

__all__ = [
    "HOST_PREFIX",
    "HTTP_METHODS",
    "NORMALIZERS",
    "PAGE_NAME_MODES",
    "SECURE_PREFIXES",
    "Hook",
    "IPNetwork",
    "PageName",
    "check_cookie_prefixes",
    "decoded_pattern",
    "has_secure_prefix",
    "import_callable",
    "joined_patterns",
]

PAGE_NAME_MODES = ("route", "template", "path")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PageName = Literal["route", "template", "path"] | Callable[[Any], Any]
Hook = Callable[..., Any]

# RFC 6265's cookie-name: an RFC 9110 token.
_TOKEN_MARKS = "!#$%&'*+-.^_`|~"
_COOKIE_NAME = re.compile(f"[{re.escape(_TOKEN_MARKS)}0-9A-Za-z]+")
# One label of a host name: what browsers take (underscores included), 63 at most.
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def _bool(name: str, value: object) -> bool:
    return read_flag(name, value)  # the client's rule: 0 and 1 too


def _strings(name: str, value: object) -> tuple[str, ...]:
    """A list of strings, without empty or blank ones: ``"".split(",")`` (an unset
    environment variable) and ``"MyBot, ".split(",")`` add nothing, where an empty
    pattern would match all, and a blank one every User-Agent."""
    if isinstance(value, str):
        return (value,) if value and not value.isspace() else ()
    items = tuple(value) if isinstance(value, Iterable) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    return tuple(item for item in items if item and not item.isspace())


#: What ``page_methods`` may name: the methods of RFC 9110, and PATCH.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")


def _methods(name: str, value: object) -> tuple[str, ...]:
    methods = _strings(name, value)
    for method in methods:
        if method.upper() not in HTTP_METHODS:
            raise ValueError(
                f"{name}: {method!r} is not an HTTP method (one of {', '.join(HTTP_METHODS)})"
            )
    return tuple(m.upper() for m in methods)


def _lower_strings(name: str, value: object) -> tuple[str, ...]:
    return tuple(s.lower() for s in _strings(name, value))


def _media_types(name: str, value: object) -> tuple[str, ...]:
    types = tuple(t.strip().lower() for t in _strings(name, value))
    for media_type in types:
        if media_type.count("/") != 1 or ";" in media_type or " " in media_type:
            raise ValueError(f"{name}: {media_type!r} is not a media type such as 'text/html'")
        if "*" in media_type:  # compared whole with the response's: a wildcard finds none
            raise ValueError(
                f"{name}: {media_type!r} is a wildcard; list each media type, such as 'text/html'"
            )
    return types


def _regexes(name: str, value: object) -> tuple[str, ...]:
    patterns = _strings(name, value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"{name}: {pattern!r} is not a valid regular expression: {exc}"
            ) from None
    return patterns


def _patterns(name: str, value: object) -> tuple[str | re.Pattern[str], ...]:
    """Regular expressions searched in the request's path: strings or compiled
    patterns, of text (a bytes one could never search a path)."""
    items = (value,) if isinstance(value, (str, bytes, bytearray, re.Pattern)) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"{name} must be a list of regular expressions, got {value!r}")
    out: list[str | re.Pattern[str]] = []
    for item in items:
        if isinstance(item, re.Pattern):
            if not isinstance(item.pattern, str):
                raise _bytes_pattern(name, item.pattern)
            out.append(item)
            continue
        if isinstance(item, (bytes, bytearray)):
            raise _bytes_pattern(name, item)
        if not isinstance(item, str):
            raise ValueError(f"{name} must be a list of regular expressions, got {item!r}")
        if not item or item.isspace():  # as in _strings(): nothing, rather than a
            continue  # pattern found in every path (or in every one with a space)
        try:
            re.compile(item)
        except re.error as exc:
            raise ValueError(f"{name}: {item!r} is not a valid regular expression: {exc}") from None
        out.append(item)
    return tuple(out)


def _bytes_pattern(name: str, pattern: object) -> ValueError:
    return ValueError(f"{name}: {pattern!r} is a bytes pattern; paths are text")


# A pattern's leading global flags ("(?i)^/private/"), valid alone but not once joined.
_GLOBAL_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\))+")
_FLAG_LETTERS = (
    (re.ASCII, "a"),
    (re.IGNORECASE, "i"),
    (re.MULTILINE, "m"),
    (re.DOTALL, "s"),
    (re.VERBOSE, "x"),
)
# A group referred to by its number (\1, (?(1)...)): numbers change once joined.
_NUMBERED_REFERENCE = re.compile(r"\\[1-9]|\(\?\([0-9]")


def joined_patterns(
    patterns: Iterable[str | re.Pattern[str]], flags: int = 0
) -> re.Pattern[str] | None:
    """``patterns`` as one regular expression, one search instead of one per pattern,
    each with its own flags (a leading ``(?i)``, a compiled pattern's); None when
    there are none, or when they cannot be joined (a group name used twice, a group
    referred to by its number): then search them one by one."""
    scoped = [_scoped(pattern) for pattern in patterns]
    if not scoped or (len(scoped) > 1 and any(map(_NUMBERED_REFERENCE.search, scoped))):
        return None
    try:
        return re.compile("|".join(scoped), flags)
    except re.error:
        return None


# A run of percent escapes in a pattern; after a backslash, "\%" is the pattern's own "%".
_ESCAPES_IN_PATTERN = re.compile(r"(?<!\\)(?:%[0-9A-Fa-f]{2})+")


def decoded_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """``pattern`` with the percent escapes it is written with (``^/caf%C3%A9/``) as
    the text they spell (see :func:`decoded_path`), to search a decoded path with;
    None when it has none, or when that text makes no pattern.

    >>> decoded_pattern(re.compile(r"^/caf%C3%A9/")).pattern
    '^/café/'
    """
    text = pattern.pattern
    if "%" not in text:
        return None
    decoded = _ESCAPES_IN_PATTERN.sub(lambda escapes: re.escape(decoded_path(escapes[0])), text)
    if decoded == text:
        return None
    try:
        return re.compile(decoded, pattern.flags)
    except re.error:  # escapes inside a construct of its own ("[%41-%5A]"): left as written
        return None


def _scoped(pattern: str | re.Pattern[str]) -> str:
    """``pattern`` as a group of its own, whose flags apply to it alone."""
    text = pattern if isinstance(pattern, str) else pattern.pattern
    leading = _GLOBAL_FLAGS.match(text)
    if leading is not None:
        text = text[leading.end() :]
    if isinstance(pattern, str):
        given = leading[0] if leading is not None else ""
        letters = "".join(sorted({c for c in given if c.isalpha()}))
    else:  # its flags, the inline ones included
        letters = "".join(letter for flag, letter in _FLAG_LETTERS if pattern.flags & flag)
    if not letters:
        return f"(?:{text})"
    # On a line of its own: a verbose pattern's comment ("# our monitor") ends at it.
    end = "\n)" if "x" in letters else ")"
    return f"(?{letters}:{text}{end}"


def _hook(name: str, value: object) -> Hook | None:
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        return import_callable(name, value)
    raise ValueError(f"{name} must be a callable or a dotted path to one, got {value!r}")


def _bool_or_hook(name: str, value: object) -> bool | Hook:
    """True, False (or 1, 0), or a hook (a callable or a dotted path to one) that
    decides each time."""
    if isinstance(value, bool) or callable(value):
        return value
    if type(value) is int and value in (0, 1):
        return read_flag(name, value)
    if isinstance(value, str) and ("." in value or ":" in value):
        return import_callable(name, value)
    raise ValueError(
        f"{name} must be True, False, or a callable (or a dotted path to one), got {value!r}"
    )


def _page_name(name: str, value: object) -> PageName:
    if value in PAGE_NAME_MODES:
        return value  # type: ignore[return-value]
    if callable(value):
        return value
    if isinstance(value, str) and ("." in value or ":" in value):
        return import_callable(name, value)
    modes = ", ".join(repr(m) for m in PAGE_NAME_MODES)
    raise ValueError(f"{name} must be one of {modes} or a callable, got {value!r}")


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
                # Text or an ipaddress object: an integer would be read as an address.
                if isinstance(item, (int, bytes)):
                    raise TypeError
                networks.append(ipaddress.ip_network(item, strict=False))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name}: {item!r} is not an IP address or network (as text, or an "
                    "ipaddress object)"
                ) from None
        return tuple(networks)
    raise ValueError(
        f"{name} must be a number of proxies or a list of networks (e.g. ['10.0.0.0/8']), "
        f"got {value!r}"
    )


def _cookie_name(name: str, value: object) -> str:
    if isinstance(value, str) and _COOKIE_NAME.fullmatch(value):
        return value
    characters = f"ASCII token characters (letters, digits and {_TOKEN_MARKS})"
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a cookie name, {characters}, got {value!r}")
    # The character at fault, named: a look-alike of another script (a Cyrillic "a")
    # or an invisible one reads as a valid name.
    index, character = next((i, c) for i, c in enumerate(value) if not _COOKIE_NAME.match(c))
    raise ValueError(
        f"{name} {value!r} has {character!r} ({_character_name(character)}) at index {index}; "
        f"a cookie name is {characters} only"
    )


def _character_name(character: str) -> str:
    """``U+0430 CYRILLIC SMALL LETTER A``: a character's code point and Unicode name."""
    if unicodedata.category(character) == "Cc":
        described = "a control character"
    else:
        described = unicodedata.name(character, "a character without a name")
    return f"U+{ord(character):04X} {described}"


#: Cookie name prefixes browsers hold to rules (RFC 6265bis; compared ignoring case):
#: such a cookie must be ``Secure`` (``__Secure-``), and also have the path "/" and
#: no ``Domain`` (``__Host-``). Browsers drop one that breaks them.
HOST_PREFIX = "__host-"
SECURE_PREFIXES = ("__secure-", HOST_PREFIX)


def has_secure_prefix(cookie_name: str) -> bool:
    """Whether browsers keep a cookie of that name only when it is ``Secure``."""
    return cookie_name.lower().startswith(SECURE_PREFIXES)


def check_cookie_prefixes(
    cookie_name: str, user_cookie_name: str, cookie_domain: str | None
) -> None:
    """ValueError for a ``__Host-`` cookie name with ``cookie_domain``, which the
    server's cookie and analytics.js's (the user id's too) are written with."""
    if cookie_domain is None:
        return
    for option, name in (("cookie_name", cookie_name), ("user_cookie_name", user_cookie_name)):
        if name.lower().startswith(HOST_PREFIX):
            raise ValueError(
                f"{option} {name!r} cannot go with cookie_domain {cookie_domain!r}: browsers "
                "drop a __Host- cookie that names a domain; leave cookie_domain unset (a "
                "cookie of the host alone) or use a name without that prefix"
            )


def check_cookie_names(
    cookie_name: str, user_cookie_name: str, taken: Mapping[str, str] | None = None
) -> None:
    """ValueError when the two cookies share a name, or when one has the name of a
    cookie the framework keeps (``taken``: a cookie's name to the setting that
    names it, ``{"sessionid": "SESSION_COOKIE_NAME"}``): each would overwrite the
    other, and the framework's value (a session's key) would be sent as an id."""
    if cookie_name == user_cookie_name:
        raise ValueError(
            f"cookie_name and user_cookie_name are both {cookie_name!r}: the anonymous id "
            "and the user id would overwrite each other; give them different names"
        )
    for option, name in (("cookie_name", cookie_name), ("user_cookie_name", user_cookie_name)):
        setting = (taken or {}).get(name)
        if setting is not None:
            raise ValueError(
                f"{option} {name!r} is already the name of another cookie ({setting}): "
                "the two would overwrite each other and that cookie's value would be sent "
                "to Segment as an id; choose another name"
            )


def _cookie_domain(name: str, value: object) -> str | None:
    """A domain name, as a ``Domain`` attribute holds it: ASCII (an IDN in the
    ``xn--`` form browsers give its host, see :func:`ascii_host_name`), an optional
    leading dot, no scheme, port or path."""
    if value is None:
        return None
    expected = f"{name} must be a domain name such as '.example.com' or None"
    if not isinstance(value, str) or not value:
        raise ValueError(f"{expected}, got {value!r}")
    problem = _domain_problem(value)
    if problem:
        raise ValueError(f"{expected}: {value!r} {problem}")
    dot, domain = ("." if value.startswith(".") else ""), value.removeprefix(".")
    if not domain.isascii():
        try:  # browsers match a cookie's domain against the host in its ASCII form
            domain = ascii_host_name(domain)
        except UnicodeError as exc:
            raise ValueError(f"{expected}: {value!r} is not a valid domain name ({exc})") from None
    labels = domain.split(".")
    if "" in labels:
        raise ValueError(
            f"{expected}: {value!r} has an empty label (two dots, or a dot at the end)"
        )
    for label in labels:
        if not _DOMAIN_LABEL.fullmatch(label):
            raise ValueError(
                f"{expected}: {value!r} has the label {label!r}; a label is 1 to 63 "
                "letters, digits, '-' or '_', and neither starts nor ends with '-'"
            )
    if len(domain) > 253:
        raise ValueError(f"{expected}: {value!r} is longer than a domain name can be (253)")
    return dot + domain


def _domain_problem(value: str) -> str | None:
    """What makes ``value`` no domain name, in words; None if nothing obvious does."""
    if value.startswith("["):
        return "is an IPv6 address; leave it unset for a cookie of the host alone"
    if "://" in value:
        return "has a scheme; give the host name alone"
    if "/" in value:
        return "has a path; give the host name alone"
    if ":" in value:
        return "has a port; a cookie is shared by every port of its domain"
    if re.search(r"[\s;,=\"'@\\]", value):
        return "holds spaces or separators"
    return None


def _cookie_format(name: str, value: object) -> str:
    if value not in ("raw", "quoted"):
        raise ValueError(f"{name} must be 'raw' or 'quoted', got {value!r}")
    return value


def _max_age(name: str, value: object) -> int:
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    # Whole seconds go into Max-Age: a lifetime under one second would be 0, which
    # tells the browser to delete the cookie at once.
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or (isinstance(seconds, float) and not math.isfinite(seconds))
        or seconds < 1
    ):
        raise ValueError(
            f"{name} must be a positive number of seconds (at least 1, finite), got {value!r}"
        )
    if seconds > _LONGEST_COOKIE:
        raise ValueError(
            f"{name} must be at most 10 years (3653 days, {_LONGEST_COOKIE} seconds; browsers "
            f"keep a cookie 400 days at most), got {short_repr(str(value))}"
        )
    return int(seconds)


#: The longest cookie lifetime taken, in seconds: ten years, with their leap days.
_LONGEST_COOKIE = 3653 * 24 * 3600


NORMALIZERS: dict[str, Callable[[str, Any], Any]] = {
    "page_calls": _bool,
    "page_methods": _methods,
    "page_content_types": _media_types,
    "exclude_paths": _patterns,
    "exclude_routes": _strings,
    "skip_bots": _bool,
    "bot_user_agents": _regexes,
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
    "send_in_tests": _bool,
    "redact_query_params": _lower_strings,
    "replace_default_page_methods": _bool,
    "replace_default_page_content_types": _bool,
    "replace_default_exclude_paths": _bool,
    "replace_default_exclude_routes": _bool,
    "replace_default_bot_user_agents": _bool,
    "replace_default_redact_query_params": _bool,
    "set_cookie": _bool,
    "cookie_name": _cookie_name,
    "user_id_from_cookie": _bool,
    "user_cookie_name": _cookie_name,
    "cookie_domain": _cookie_domain,
    "cookie_format": _cookie_format,
    "cookie_max_age": _max_age,
    "identify_on_login": _bool_or_hook,
    "identify_traits": _hook,
    **BROWSER_NORMALIZERS,
}


#: Hooks every adapter calls as plain functions, in the request's thread.
PLAIN_HOOKS = (
    "page_filter",
    "page_properties",
    "consent",
    "page_name",
    "csp_nonce",
    "identify_on_login",
    "identify_traits",
)


#: The positional arguments each hook is called with (the request, then the
#: response or the user).
HOOK_ARGUMENTS = {
    "page_filter": 2,
    "page_properties": 2,
    "consent": 1,
    "page_name": 1,
    "csp_nonce": 1,
    "identify_on_login": 2,
    "identify_traits": 1,
    "user_id": 1,
}


#: The hooks ``segment_asgi`` awaits when they are ``async def``.
ASGI_ASYNC_HOOKS = frozenset({"user_id", "consent", "page_filter", "page_properties"})


def check_plain_hooks(options: Any, *, may_be_async: frozenset[str] = frozenset()) -> None:
    """ValueError naming a hook given as ``async def`` that the adapter calls plainly,
    or one whose signature cannot take the arguments it is called with.

    Called, an async one would return a coroutine, which counts as "yes"
    (``page_filter``, ``consent``) or as no user: wrong data, and a warning no one
    reads. Only ``segment_asgi`` awaits hooks, those ``may_be_async`` names. One
    that cannot take its arguments would fail at every request, and a ``consent``
    failing so turns every automatic call off.
    """
    for name in (*PLAIN_HOOKS, "user_id"):
        if name not in may_be_async and is_async(getattr(options, name, None)):
            also = f"; only {', '.join(sorted(may_be_async))} may be async" if may_be_async else ""
            raise ValueError(f"{name} must be a plain function, not async def{also}")
    for name, arguments in HOOK_ARGUMENTS.items():
        hook = getattr(options, name, None)
        if callable(hook) and not isinstance(hook, bool):
            check_arguments(name, hook, arguments=arguments)
