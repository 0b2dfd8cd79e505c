"""The neutral request every adapter builds: all the web rules read only this."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from functools import lru_cache, update_wrapper
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from segment_core.hosts import DEFAULT_PORTS

__all__ = [
    "MAX_CACHED_LENGTH",
    "PORT_PATTERN",
    "RequestInfo",
    "ShortValueCache",
    "WSGIHeaders",
    "cached_for_short_text",
    "checked_host",
    "decoded_path",
    "escaped_non_ascii",
    "query_of_request_line",
    "request_wire_path",
    "short_value_cache",
    "wire_path",
    "without_fragment",
]


@dataclass(slots=True)
class RequestInfo:
    """What the web rules need to know about one HTTP request.

    - ``host``: ``host[:port]`` as the framework trusts it (Django's ``get_host()``);
      an empty host means "unknown": the request is never a page view.
    - ``path`` and ``query_string``: as sent on the wire (percent-encoded), the
      query without its ``?``; an empty path means the request line named none
      (``*``, ``x/y``): no URL, so the request is never a page view.
    - ``headers``: a case-insensitive mapping (Django's ``request.headers``,
      Werkzeug's and Starlette's ``Headers``) or a dict with lower-case names.
      Repeated ``X-Forwarded-For`` lines must be joined with ``", "``.
    - ``client_addr``: the socket peer's address (``REMOTE_ADDR``), if known.
    - ``route_name`` / ``route_template``: the matched route's name and pattern.
    - ``route_namespaces``: namespaces (Django URL namespaces and app names,
      Flask blueprints) the route belongs to, for ``exclude_routes``.
    - ``path_params``: the values the route captured from the path, by parameter
      name (secret-looking ones are redacted from the path).
    - ``host_trusted``: the framework's check of a host name (Django's
      ``ALLOWED_HOSTS``, Flask's ``TRUSTED_HOSTS``), applied to a forwarded host.
    - ``route_of_path``: ``callable(path) -> path_params | None``, the app's
      router, to redact a same-app ``Referer``.
    - ``mount``: where the app is mounted (``SCRIPT_NAME``, ``root_path``),
      without a trailing ``/``; ``exclude_paths`` also match the path below it.
    - ``user_id``: the user the framework authenticated, if any.
    - ``native``: the framework's own request object, handed to user hooks.

    >>> RequestInfo(host="example.com", path="/a", query_string="b=1").url
    'http://example.com/a?b=1'
    """

    method: str = "GET"
    scheme: str = "http"
    host: str = ""
    path: str = "/"
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    client_addr: str | None = None
    route_name: str | None = None
    route_template: str | None = None
    route_namespaces: tuple[str, ...] = ()
    path_params: Mapping[str, Any] | None = None
    host_trusted: Callable[[str], bool] | None = None
    route_of_path: Callable[[str], Mapping[str, Any] | None] | None = None
    mount: str = ""
    user_id: str | None = None
    native: Any = None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower-case), or None."""
        return self.headers.get(name)

    @property
    def url(self) -> str:
        """The full URL, without a fragment (and before any redaction)."""
        query = without_fragment(self.query_string)
        search = f"?{query}" if query else ""
        return f"{self.scheme}://{self.host}{self.path}{search}"

    @property
    def hook_target(self) -> Any:
        """What user hooks receive: the framework's request, else this object."""
        return self if self.native is None else self.native


class WSGIHeaders(Mapping[str, str]):
    """Request headers read straight from a WSGI environ (or Django's ``META``).

    What :class:`RequestInfo` needs (``.get("user-agent")``, lower-case names) at a
    fraction of the cost of the frameworks' own header objects, which parse every
    header or raise an exception to report a missing one. The server has already
    joined repeated headers with ", ".
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        value = self._environ.get(_environ_key(name))
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


@lru_cache(maxsize=256)
def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


#: The longest value a per-value cache keeps. Requests bring the same short values
#: again and again (paths, hosts, User-Agents); a long one is one visitor's, and would
#: hold kilobytes for each entry kept.
MAX_CACHED_LENGTH = 512

_Value = TypeVar("_Value", bound=Sized)
_Answer = TypeVar("_Answer")


class ShortValueCache(dict[_Value, _Answer]):
    """A function with its answers kept for up to ``maxsize`` values of at most
    :data:`MAX_CACHED_LENGTH` characters (or bytes): bounded in bytes, not only in
    entries. Longer values are answered anew each time; a full cache starts over.

    Called as the function is: a value seen before is answered by the dict's own
    lookup, without a Python frame, as with ``functools.lru_cache``.
    """

    def __init__(self, compute: Callable[[_Value], _Answer], maxsize: int) -> None:
        super().__init__()
        self._compute = compute
        self._maxsize = maxsize
        update_wrapper(self, compute)  # the function's name and docstring

    def __missing__(self, value: _Value) -> _Answer:
        answer = self._compute(value)
        if len(value) <= MAX_CACHED_LENGTH:
            if len(self) >= self._maxsize:
                self.clear()
            self[value] = answer
        return answer

    __call__ = dict.__getitem__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._compute.__qualname__}>"


def short_value_cache(
    maxsize: int,
) -> Callable[[Callable[[_Value], _Answer]], ShortValueCache[_Value, _Answer]]:
    """A decorator: the function as a :class:`ShortValueCache` of ``maxsize`` entries."""
    return lambda compute: ShortValueCache(compute, maxsize)


def cached_for_short_text(
    maxsize: int,
) -> Callable[[Callable[..., _Answer]], Callable[..., _Answer]]:
    """A decorator: ``functools.lru_cache(maxsize)``, but a call with a text argument
    (what a visitor sent: a path, a header) longer than :data:`MAX_CACHED_LENGTH` is
    answered anew, never kept."""

    def decorate(compute: Callable[..., _Answer]) -> Callable[..., _Answer]:
        cached = lru_cache(maxsize=maxsize)(compute)

        def call(*args: Any) -> _Answer:
            for arg in args:
                if type(arg) is str and len(arg) > MAX_CACHED_LENGTH:
                    return compute(*args)
            return cached(*args)

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return update_wrapper(call, compute)

    return decorate


# What a path keeps unescaped (RFC 3986 pchar and "/"); everything else is %XX.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


@short_value_cache(maxsize=4096)
def wire_path(raw: bytes | str) -> str:
    """A path as the browser sent it, percent-encoded, from what the server gives.

    ``bytes`` are the path after the server's percent-decoding (a WSGI
    ``PATH_INFO`` encoded back to latin-1): every byte that is not a plain path
    character, invalid UTF-8 included, becomes ``%XX`` again. A ``str`` is a path
    still percent-encoded (ASGI's ``raw_path``): its escapes are kept as they are.

    >>> wire_path(b"/caf\\xe9/\\xc3\\xa9"), wire_path("/a%E9 b")
    ('/caf%E9/%C3%A9', '/a%E9%20b')
    """
    if isinstance(raw, bytes):
        return quote(raw, safe=_PATH_SAFE)
    return quote(raw, safe=_PATH_SAFE + "%")


@short_value_cache(maxsize=4096)
def _raw_wire_path(raw: bytes) -> str:
    # The request line's bytes: escapes kept, anything else outside the safe set escaped.
    return quote(raw, safe=_PATH_SAFE + "%")


# RFC 9112's absolute-form request target, up to its path: "scheme://authority"
# (user:password@ included), as proxies are sent it and open-proxy scanners send it.
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def _target_path(target: str) -> str:
    """The path of a request line's target, given without its query and fragment.

    An origin-form target (``/p``) is its own path; an absolute-form one
    (``http://ada:pw@shop.example/p``) has the path after its authority, ``/``
    when it has none, as RFC 9112 reads it, its ``user:password@`` never kept.
    The page's host stays the ``Host`` header's, as the servers and frameworks
    route by it. Any other target (``*``, ``shop.example:443``, ``x/y``) names
    no path: ``""``.

    >>> _target_path("/p"), _target_path("http://ada:pw@shop.example"), _target_path("x/y")
    ('/p', '/', '')
    """
    if target.startswith("/"):
        return target
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is None:
        return ""
    return target[absolute.end() :] or "/"


def request_wire_path(path: str, raw_path: bytes | None, root_path: str = "") -> str:
    """The wire path of a request: ``raw_path`` when the server kept it.

    ``path`` is decoded by the server (invalid UTF-8 already lost to U+FFFD);
    ``raw_path`` holds the bytes the browser sent (ASGI's ``raw_path``, a WSGI
    ``RAW_URI``; a query some servers leave in it is dropped). Servers disagree
    on whether they start with ``root_path`` (the mount point, ``SCRIPT_NAME``):
    it is added where missing. An absolute-form target gives its path (uvicorn's
    h11 server passes it on as it came); one that names no path gives ``""``
    (see :func:`_target_path`).

    >>> request_wire_path("/caf\ufffd", b"/caf%E9", "/shop")
    '/shop/caf%E9'
    >>> request_wire_path("http://shop.example/p", b"http://shop.example/p")
    '/p'
    """
    # A fragment, which some clients write into the request line, is no part of it.
    wire = (
        _raw_wire_path(raw_path.partition(b"?")[0].partition(b"#")[0])
        if raw_path
        else wire_path(path)
    )
    if not wire.startswith("/"):
        wire = _target_path(wire)
        if not wire:
            return ""
    if root_path:
        prefix = wire_path(root_path.rstrip("/"))
        if wire != prefix and not wire.startswith(prefix + "/"):
            wire = prefix + wire
    return wire


def environ_wire_path(environ: Mapping[str, Any], decoded: str | None = None) -> str:
    """The path of a WSGI request as the browser sent it (``SCRIPT_NAME`` included).

    gunicorn's and Werkzeug's ``RAW_URI`` and uWSGI's ``REQUEST_URI`` keep the
    request line's bytes, read as :func:`_target_path` says (an absolute-form
    target gives its path, one that names no path ``""``). Otherwise
    ``decoded``, a path the framework decoded (Django's ``request.path``, which
    re-escapes bytes that are not UTF-8), or else ``PATH_INFO`` as the server
    decoded it, given as latin-1 (PEP 3333): each of its bytes is escaped again
    where needed (a ``%`` too: it was ``%25``).

    >>> environ_wire_path({"SCRIPT_NAME": "", "PATH_INFO": "/100%"})
    '/100%25'
    >>> environ_wire_path({"REQUEST_URI": "http://ada:pw@shop.example/p?q=1"})
    '/p'
    """
    script_name = environ.get("SCRIPT_NAME", "")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        # A proxy that strips the mount point leaves it out of the request line.
        line = raw.partition("?")[0].partition("#")[0]
        return request_wire_path("", line.encode("latin-1"), script_name)
    if decoded is not None:
        return wire_path(decoded)
    path_info = environ.get("PATH_INFO", "")
    if path_info and not path_info.startswith("/"):
        path_info = _target_path(path_info)
        if not path_info:
            return ""
    path = script_name + path_info or "/"  # an empty PATH_INFO: the root (PEP 3333)
    try:
        return wire_path(path.encode("latin-1"))
    except UnicodeEncodeError:  # not the latin-1 of bytes: a path as text
        return wire_path(path)


# What unquote(errors="surrogateescape") makes of a byte that is no part of UTF-8.
_UNDECODED_BYTE = re.compile("[\udc80-\udcff]")


@short_value_cache(maxsize=1024)
def decoded_path(path: str) -> str:
    """A percent-encoded path as the text it spells: its escapes of UTF-8 decoded,
    those of other bytes kept (in upper case).

    >>> decoded_path("/%C3%BCber-uns/caf%e9/100%")
    '/über-uns/caf%E9/100%'
    """
    text = unquote(path, errors="surrogateescape")
    if not text.isascii():
        text = _UNDECODED_BYTE.sub(lambda byte: f"%{ord(byte[0]) - 0xDC00:02X}", text)
    return text


#: A port after a host, as Werkzeug checks a ``Host``: 1 to 65535, without a leading
#: zero (no browser writes one; ``new URL()`` refuses a port past 65535).
PORT_PATTERN = (
    r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)

# RFC 3986's host (an IP literal, or a name of unreserved characters, %-escapes and
# sub-delimiters: underscores too, as in container names) and an optional port.
_HOST_HEADER = re.compile(
    rf"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::{PORT_PATTERN})?"
)


@short_value_cache(maxsize=256)
def checked_host(host: str) -> str:
    """``host`` as a URL holds it, if it is a ``host[:port]`` a URL can hold (a port
    from 1 to 65535), else ``""`` (unknown). A host is in lower case, as browsers
    write it (``location.href``): ``SHOP.Example`` is the page's ``shop.example``.

    :class:`RequestTracker` treats any other host as unknown: ASGI servers pass
    the ``Host`` header on unchecked, and one such as ``example.com#x``, ``a b/c``
    or ``shop.example:99999`` makes no page URL, so such a request is never a
    page view.

    >>> checked_host("Shop.Example:8000"), checked_host("[::1]"), checked_host("a:0")
    ('shop.example:8000', '[::1]', '')
    """
    return host.lower() if _HOST_HEADER.fullmatch(host) else ""


#: The port each scheme's URLs leave out, as written after a host (WebSockets' too).
_DEFAULT_PORTS = {
    scheme: f":{port}" for scheme, port in {**DEFAULT_PORTS, "ws": 80, "wss": 443}.items()
}


def without_default_port(scheme: str, host: str) -> str:
    """``host`` without the port its scheme implies, as browsers write a URL
    (``location.href``) and Werkzeug its host: a ``Host`` header of
    ``shop.example:443`` over HTTPS is the page ``https://shop.example/``.

    >>> without_default_port("https", "shop.example:443"), without_default_port("http", "[::1]:80")
    ('shop.example', '[::1]')
    >>> without_default_port("http", "shop.example:443"), without_default_port("http", "a:8080")
    ('shop.example:443', 'a:8080')
    """
    port = _DEFAULT_PORTS.get(scheme)
    if port is not None and host.endswith(port):
        return host[: -len(port)]
    return host


def query_of_request_line(query: str, target: object) -> str:
    """The query string a server gave, unless the request line's path held a ``#``.

    ``target`` is the request line's target as the server kept it (ASGI's
    ``raw_path``, a WSGI ``RAW_URI`` or ``REQUEST_URI``). In ``/p#top?a=1``
    everything after the ``#`` is the fragment: gunicorn and Werkzeug give no
    query, while uvicorn and uWSGI split the target at its first ``?`` and give
    ``a=1``, which is no part of the page. Raw non-ASCII bytes in the query are
    percent-encoded (:func:`escaped_non_ascii`).

    >>> query_of_request_line("a=1", "/p#top?a=1"), query_of_request_line("a=1", b"/p%23x")
    ('', 'a=1')
    """
    if isinstance(target, bytes):
        if b"#" in target.partition(b"?")[0]:
            return ""
    elif isinstance(target, str) and "#" in target.partition("?")[0]:
        return ""
    return query if query.isascii() else escaped_non_ascii(query)


def escaped_non_ascii(text: str) -> str:
    """A query string or a URL from a header, each non-ASCII byte percent-encoded.

    Browsers send both percent-encoded; any other client may send raw bytes
    (``?contraseña=...``), which WSGI and ASGI servers hand on as the latin-1 of
    the bytes. Escaped, they read as the framework reads them (``contraseña``, not
    ``contraseÃ±a``), so the rules on names hold. Text that is no latin-1 of bytes
    (a test transport's) is taken as UTF-8.

    >>> escaped_non_ascii("q=caf\\xc3\\xa9&r=\\xe9"), escaped_non_ascii("q=\\u5bc6")
    ('q=caf%C3%A9&r=%E9', 'q=%E5%AF%86')
    """
    if text.isascii():
        return text
    if max(text) > "\xff":
        text = text.encode("utf-8", "surrogatepass").decode("latin-1")
    return text.translate(_NON_ASCII_ESCAPES)


# Each byte outside ASCII (as a latin-1 character), to its %XX.
_NON_ASCII_ESCAPES = {byte: f"%{byte:02X}" for byte in range(0x80, 0x100)}


def without_fragment(query: str) -> str:
    """A query string without the ``#fragment`` some servers leave in it.

    Browsers never send a fragment, but any client can write one into the request
    line, and uvicorn's h11 server passes it on in the query string. It is no part
    of the page's URL: the Spec's ``url`` has none.

    >>> without_fragment("q=1#top"), without_fragment("q=1")
    ('q=1', 'q=1')
    """
    return query.partition("#")[0] if "#" in query else query


#: What no client means to send in a header, or in a value read from one, as a
#: break: each run becomes a space. C0, DEL and C1 controls, and Unicode's line and
#: paragraph separators.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
#: What no client means to send, and no reader sees: removed. Unicode's bidirectional
#: embeddings, overrides and isolates (which reorder the text shown around them), and
#: the byte order mark. (Not the joiners, marks and spaces of zero width that emoji
#: and scripts such as Persian are written with.)
_INVISIBLE = re.compile(r"[\u202a-\u202e\u2066-\u2069\ufeff]+")


def header_text(value: str) -> str:
    """A header's ``value`` as text: the latin-1 of UTF-8 bytes (as WSGI and ASGI
    servers hand any header on) read as UTF-8, and without control characters.

    >>> header_text("Mozilla/5.0 (Ünïcødé)".encode().decode("latin-1"))
    'Mozilla/5.0 (Ünïcødé)'
    """
    if not value.isascii():
        # Text already, or bytes of another charset: as it is.
        with contextlib.suppress(UnicodeError):
            value = value.encode("latin-1").decode("utf-8")
    return value if value.isprintable() else without_controls(value)


def without_controls(text: str) -> str:
    """``text`` with each run of control characters (:data:`_CONTROLS`) made one space,
    without the invisible ones (:data:`_INVISIBLE`), and trimmed.

    >>> without_controls("Mozilla/5.0\\r\\nX-Injected: 1\\x00")
    'Mozilla/5.0 X-Injected: 1'
    """
    return _CONTROLS.sub(" ", _INVISIBLE.sub("", text)).strip(" ")
