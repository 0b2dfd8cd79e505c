"""Browser identity: read analytics.js cookies in both formats, and create the id cookie.

analytics.js "classic" stores ``ajs_anonymous_id=%22<uuid>%22`` (JSON, then URL
encoding); analytics-next stores the raw value. Both are read; the cookie this
library writes uses ``cookie_format`` ("raw" for analytics-next, "quoted" for
classic).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import quote, unquote

from segment_core.jsonvalues import lone_surrogate_problem
from segment_core.normalize import new_message_id
from segment_core.web._options import WebOptions
from segment_core.web._request import RequestInfo, cached_for_short_text

__all__ = [
    "CookieSpec",
    "anonymous_id_cookie",
    "cookie_held_back",
    "id_cookie",
    "is_plain_id",
    "kept_cookie_value",
    "new_anonymous_id",
    "parse_id_cookie",
    "set_cookie_value",
    "user_id_problem",
]

#: Longer values are not ids any browser library wrote (a UUID has 36 characters).
MAX_ID_LENGTH = 100
#: The longest user id taken from the framework or a ``user_id`` hook: an email
#: address has at most 254 characters; a user name read from a request's header
#: (HTTP Basic) can be any length, and would push its calls past 32 KB.
MAX_USER_ID_LENGTH = 1024
# Values analytics.js may leave behind that are no id, and JSON literals.
_NOT_IDS = frozenset({"null", "true", "false", "undefined", "nan", "none", "[object object]"})
# Characters no id has: JSON and markup punctuation, cookie separators, escapes,
# spaces and control characters (UUIDs, numbers, "user_42", "a@b.example",
# "auth0|123" all pass).
_IMPLAUSIBLE = re.compile(r'[\s"{}\[\]\\<>;,\x00-\x1f\x7f]')
#: The anonymous-id cookie analytics.js keeps itself (and clears on reset()).
ANALYTICS_JS_COOKIE = "ajs_anonymous_id"
# A JSON number: analytics.js reads its cookies as JSON, so a raw value of this
# form comes back from its cookie as a JavaScript number's text.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@cached_for_short_text(maxsize=1024)
def parse_id_cookie(value: str | None, analytics_js_reads_it: bool = False) -> str | None:
    """The id stored in an analytics.js cookie value, raw or classic; None if implausible.

    ``analytics_js_reads_it``: the cookie is analytics.js's own anonymous id, and a
    raw number it would read back changed (``12345678901234567890`` as
    ``12345678901234567000``, ``1e3`` as ``1000``) names no visitor both sides share:
    none.

    JSON objects and arrays, ``true``/``false``/``null``, undecodable
    percent-escapes, control characters, spaces, quotes, brackets, braces,
    backslashes, ``<>;,``, values over 100 characters, and values with raw
    non-ASCII characters (analytics.js and this library percent-encode them; a
    server reads such bytes as Latin-1 or U+FFFD, so one visitor would have a
    different id per framework) are not ids: a forged or broken cookie counts as
    no cookie.

    >>> parse_id_cookie("%22a1b2%22"), parse_id_cookie("a1b2"), parse_id_cookie("null")
    ('a1b2', 'a1b2', None)
    """
    if not value or len(value) > 3 * MAX_ID_LENGTH + 6 or not value.isascii():
        return None
    try:
        text = unquote(value, errors="strict") if "%" in value else value
    except UnicodeDecodeError:
        return None
    if "%" in text and _BAD_ESCAPE.search(value):
        return None
    if len(text) >= 2 and text[0] == '"':
        # JSON, as analytics.js reads it: whitespace after the closing quote is
        # JSON's own (JSON.parse reads '"a1b2" ' as "a1b2"); anything else, no id.
        try:
            decoded = json.loads(text)
        except ValueError:
            return None
        if isinstance(decoded, bool) or not isinstance(decoded, (str, int)):
            return None
        text = str(decoded)
    elif analytics_js_reads_it and _JSON_NUMBER.fullmatch(text) and js_number_text(text) != text:
        return None
    if (
        not text
        or len(text) > MAX_ID_LENGTH
        or text.lower() in _NOT_IDS
        or _IMPLAUSIBLE.search(text) is not None
        or not text.isprintable()
    ):
        return None
    return text


# A "%" that does not start a two-digit hex escape.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def js_number_text(number: str) -> str:
    """The text JavaScript gives the JSON number ``number`` (``String(JSON.parse(number))``).

    >>> js_number_text("12345678901234567890"), js_number_text("1e3"), js_number_text("42")
    ('12345678901234567000', '1000', '42')
    >>> [js_number_text(number) for number in ("1.50", "-0", "1e-7", "1e400")]
    ['1.5', '0', '1e-7', 'Infinity']
    """
    value = float(number)
    if value == 0:
        return "0"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    # The shortest digits that read back as the value, as both languages find them,
    # written by ECMAScript's Number::toString rules.
    _, digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple))
    k, n = len(digits), len(digits) + int(exponent)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return "-" + text if value < 0 else text


def id_cookie(cookies: Mapping[str, str], header: str | None, name: str) -> str | None:
    """The value of the cookie ``name`` as analytics.js reads it: the first one sent.

    ``cookies`` is the framework's parse of the ``Cookie`` header, ``header`` the
    header itself. A browser sends two cookies of one name when a host's cookie and
    a domain's both exist (longer paths first, then the older first: RFC 6265,
    5.4); analytics.js and the snippet's loader take the first, as ``document.cookie``
    lists them in the same order, where most frameworks keep the last. The first
    wins here too, so both sides name one visitor; ``analytics.reset()`` removes
    both (see the snippet).
    """
    value = cookies.get(name)
    if value is None or header is None or header.count(name + "=") < 2:
        return value
    for part in header.split(";"):
        key, equals, text = part.partition("=")
        if equals and key.strip() == name:
            text = text.strip()
            return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
    return value


def new_anonymous_id() -> str:
    """A fresh anonymous id: a random UUID, as analytics.js creates."""
    return new_message_id()


@dataclass(slots=True)
class CookieSpec:
    """A cookie for the adapter to set; ``value`` is ready for the wire.

    >>> CookieSpec("ajs_anonymous_id", "abc", max_age=60).header_value()
    'ajs_anonymous_id=abc; Max-Age=60; Path=/; SameSite=Lax'
    """

    name: str
    value: str
    max_age: int
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    samesite: Literal["Lax", "Strict", "None"] = "Lax"
    httponly: bool = False

    def header_value(self) -> str:
        """The value of a ``Set-Cookie`` header for this cookie."""
        attributes = _attributes(
            self.max_age, self.path, self.domain, self.samesite, self.secure, self.httponly
        )
        return f"{self.name}={self.value}{attributes}"


@functools.lru_cache(maxsize=64)
def _attributes(
    max_age: int, path: str, domain: str | None, samesite: str, secure: bool, httponly: bool
) -> str:
    # The same for every visitor of an app: written out once.
    parts = [f"Max-Age={max_age}", f"Path={path}"]
    if domain:
        parts.append(f"Domain={domain}")
    parts.append(f"SameSite={samesite}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    return "; " + "; ".join(parts)


def user_id_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as a request's user id, or None if it can.

    >>> user_id_problem("auth0|42"), user_id_problem("x" * 2000)
    (None, '2,000 characters long, more than the 1,024 of a user id')
    """
    if len(text) > MAX_USER_ID_LENGTH:
        return f"{len(text):,} characters long, more than the {MAX_USER_ID_LENGTH:,} of a user id"
    return None if text.isascii() else lone_surrogate_problem(text)


def is_plain_id(value: str) -> bool:
    """Whether ``value`` is ASCII letters, digits and hyphens, like the ids this library makes.

    Such a value needs no escape in a cookie, as a URL or as ``http.cookies`` quotes it.

    >>> is_plain_id("3b241101-e2bb-4255-8caf-4136c566a962"), is_plain_id("a b"), is_plain_id("")
    (True, False, False)
    """
    return value.isascii() and value.replace("-", "").isalnum()


def cookie_domain_for(domain: str | None, host: str) -> str | None:
    """``cookie_domain`` where browsers keep a cookie for it on ``host``, else None.

    A browser drops a cookie whose ``Domain`` does not domain-match the page's
    host (RFC 6265): on another host of the app (an alias, a staging name, an
    address), the cookie is host-only there, or neither side would keep the id.

    >>> cookie_domain_for(".shop.example", "www.shop.example:8000")
    '.shop.example'
    >>> cookie_domain_for(".shop.example", "shop-alias.example"), cookie_domain_for(".a.b", "[::1]")
    (None, None)
    """
    if domain is None or host.startswith("["):  # no Domain on an IPv6 address
        return None
    name = host.partition(":")[0].lower()
    bare = domain.lstrip(".").lower()
    return domain if name == bare or name.endswith("." + bare) else None


def cookie_held_back(request: RequestInfo) -> bool:
    """Whether the browser held the visitor's id cookie back from ``request``, so that
    its absence says nothing of the visitor.

    Both libraries' cookie is ``SameSite=Lax``, which a browser sends along with a
    request another site started (``Sec-Fetch-Site: cross-site``) only for a
    navigation of the whole window by a safe method: not with a form another site
    posts back (a payment's 3-D Secure return, a SAML or "Sign in with Apple"
    callback), nor to a frame or a ``fetch()``. Answered with a new id's cookie,
    such a request would replace the one the browser keeps.
    """
    site = request.headers.get("sec-fetch-site")
    if site is None or site.strip().lower() != "cross-site":
        return False
    if request.method.upper() not in _LAX_METHODS:
        return True
    mode = request.headers.get("sec-fetch-mode")
    destination = request.headers.get("sec-fetch-dest")
    return (mode is not None and mode.strip().lower() != "navigate") or (
        destination is not None and destination.strip().lower() != "document"
    )


#: The methods of a cross-site navigation that a ``SameSite=Lax`` cookie goes along with.
_LAX_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def anonymous_id_cookie(
    anonymous_id: str, options: WebOptions, *, secure: bool, host: str
) -> CookieSpec:
    """The ``ajs_anonymous_id`` cookie analytics.js will read back, for a page of ``host``.

    Never HttpOnly: the browser library must read it to share the visitor.
    """
    if options.cookie_format == "quoted":
        value = quote(json.dumps(anonymous_id), safe="")
    elif is_plain_id(anonymous_id):
        value = anonymous_id  # the ids this library makes: nothing to escape
    else:
        value = quote(anonymous_id, safe="-._~")
    # Positional (name, value, max_age, path, domain, secure): once per new visitor.
    # A name with a __Secure-/__Host- prefix is kept by browsers only when Secure.
    return CookieSpec(
        options.cookie_name,
        value,
        options.cookie_max_age,
        "/",
        options.cookie_domain and cookie_domain_for(options.cookie_domain, host),
        secure or options.secure_cookies,
    )


def set_cookie_value(line: str) -> str | None:
    """The value a ``Set-Cookie`` line (``name=value; Path=/; ...``) stores, as a
    browser keeps it (a quoted one unquoted); None for a line that deletes the cookie
    (``Max-Age`` of 0 or less, else ``Expires`` in the past: ``Max-Age`` wins)."""
    value, attributes = _set_cookie_parts(line)
    max_age, expires = attributes.get("max-age"), attributes.get("expires")
    seconds = None if max_age is None else _integer(max_age)
    if seconds is not None:
        if seconds <= 0:
            return None
    elif expires is not None and _in_the_past(expires):
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        from http.cookies import _unquote

        value = _unquote(value)
    return value


def kept_cookie_value(lines: Iterable[str]) -> str | None:
    """Of a response's ``Set-Cookie`` lines for one cookie name, the value the
    browser keeps for the whole site (``Path=/`` or none): each domain's last line
    counts, and the latest of those that keeps a value (a view moving the cookie to
    another domain deletes the old copy); None when none does. A line for another
    path (deleting an old copy there) is another cookie."""
    by_domain: dict[str, str | None] = {}  # each domain's cookie, last changed last
    for line in lines:
        attributes = _set_cookie_parts(line)[1]
        path = attributes.get("path")
        if path is None or path in ("", "/"):
            domain = (attributes.get("domain") or "").lstrip(".").lower()
            by_domain.pop(domain, None)
            by_domain[domain] = set_cookie_value(line)
    return next((value for value in reversed(by_domain.values()) if value is not None), None)


def _set_cookie_parts(line: str) -> tuple[str, dict[str, str]]:
    first, *attributes = line.split(";")
    parts: dict[str, str] = {}
    for attribute in attributes:
        key, _, setting = attribute.partition("=")
        parts[key.strip().lower()] = setting.strip()
    return first.partition("=")[2].strip(), parts


def _integer(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def _in_the_past(text: str) -> bool:
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):  # a date browsers would not read
        return False
    return when.tzinfo is not None and when.timestamp() <= time.time()
