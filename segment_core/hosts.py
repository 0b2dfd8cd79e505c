"""The ``host`` option and write keys, checked once at construction.

``host`` is the base URL events go to: ``http`` or ``https``, a host name, an
optional port (not 0, where no server listens) and an optional path prefix
(``https://proxy.example/segment`` posts to ``/segment/v1/batch``). A query, a
fragment or ``user:password@`` has no meaning there and is refused; so that no error
or display ever shows a credential, the refused value is shown with them masked.
``oauth_auth_server`` is held to the same rules.

:func:`shown_answer` is what errors and log lines show of a host's answer: a proxy or
a debug server may echo the request, its credentials and its events with it.

:func:`ascii_host_name` writes a host name as browsers send and compare it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterable
from urllib.parse import SplitResult, quote, quote_plus, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from segment_core.masking import mask_secret

__all__ = [
    "ANSWER_SHOWN_CHARS",
    "DEFAULT_PORTS",
    "ascii_host_name",
    "check_host",
    "check_write_key",
    "doubled_api_path",
    "is_loopback_url",
    "masked_secrets",
    "redact_url",
    "shown_answer",
    "url_port",
]

#: The port a URL that names none reaches, by its scheme.
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Of a host's answer, the most an error or a log line shows.
ANSWER_SHOWN_CHARS = 120
#: The fields of a JSON answer that say what was wrong, the first one present shown.
_ANSWER_FIELDS = ("message", "error", "errors")
#: Where a server's echo of the batch it was sent begins.
_ECHOED_BATCH = re.compile(r'\{\s*"batch"\s*:')


def url_port(parts: SplitResult) -> int | None:
    """The port a split URL reaches: its own, else its scheme's default (None for
    another scheme). ValueError for a port that is no number, as ``parts.port``."""
    return parts.port or DEFAULT_PORTS.get(parts.scheme.lower())


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``).

    Such a server is reached directly: a proxy of the environment (``HTTP_PROXY``)
    is for the network, and cannot reach the caller's own loopback.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.removesuffix(".")  # the root's dot: the same name
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if ":" in host or not _NUMERIC_LABEL.fullmatch(host.rpartition(".")[2]):
        return False
    try:  # the forms resolvers read as an IPv4 address too: 127.1, 0x7f.0.0.1
        return ipaddress.IPv4Address(socket.inet_aton(host)).is_loopback
    except OSError:
        return False


def check_host(value: object, *, name: str = "host", written: str | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` (the option) unless ``value`` is a usable
    base URL: ``host``, or ``oauth_auth_server``, whose path ``/token`` is added to.
    ``written``: what the user wrote, shown in the error, when ``value`` was made of it
    (a scheme added)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {type(value).__name__}")
    shown = _without_query(redact_url(value if written is None else written))
    if not value.isprintable() or value != value.strip() or " " in value:
        raise ValueError(f"{name} must not contain spaces or control characters, got {shown!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as error:
        raise ValueError(f"{name} is not a valid URL ({error}): {shown!r}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {shown!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{name} must not hold credentials (user:password@), got {shown!r}"
            + ("; the write key is sent as HTTP Basic already" if name == "host" else "")
        )
    if not parts.hostname:
        raise ValueError(f"{name} must name a server, got {shown!r}")
    if parts.port == 0:
        raise ValueError(f"{name} must not have port 0 (no server listens there), got {shown!r}")
    try:  # as the connection pool will read it: a name IDNA cannot write is no server
        parse_url(value)
    except LocationParseError as error:
        raise ValueError(
            f"{name} names no server that can be reached ({error}): {shown!r}"
        ) from None
    if "\\" in parts.netloc:
        raise ValueError(f"{name} must not hold a backslash in its server's name, got {shown!r}")
    try:  # as the socket will
        server = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(
            f"{name} names no server that can be reached (a part of its name between "
            f"dots is empty or over 63 characters): {shown!r}"
        ) from None
    problem = _server_name_problem(server)
    if problem is not None:
        raise ValueError(f"{name} names no server that can be reached ({problem}): {shown!r}")
    if parts.query or "?" in value:
        raise ValueError(f"{name} must not have a query string, got {shown!r}")
    if parts.fragment or "#" in value:
        raise ValueError(f"{name} must not have a #fragment, got {shown!r}")


#: What a server's name (in its ASCII form) is made of: DNS's letters, digits and
#: hyphens, and the underscore container and service names use.
_SERVER_NAME = re.compile(r"[A-Za-z0-9_.-]+")
#: A label resolvers read as a number: ``127``, ``0x7f``.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")


def _server_name_problem(server: str) -> str | None:
    """Why ``server`` (a URL's host, IDNA-encoded) names no server, or None: a
    character no name holds (``;``, an escape such as ``%40``). An IPv6 literal is
    urllib3's to check; a name of numbers (``collector.2024``) is the resolver's,
    which a hosts file may answer."""
    if ":" in server:
        return None
    wrong = next((char for char in server if not _SERVER_NAME.fullmatch(char)), None)
    if wrong is not None:
        return f"{wrong!r} cannot be in a server's name"
    return None


def browser_host_problem(url: str) -> str | None:
    """Why a browser's URL parser refuses the server of ``url`` (a usable host, see
    :func:`check_host`), or None: a name whose last label is a number but that is no
    IPv4 address (``collector.2024``, ``1.2.3.4.5``), or an IPv6 literal with a
    zone (``fe80::1%25eth0``), which a resolver may take and a browser never does."""
    server = (urlsplit(url).hostname or "").removesuffix(".")
    if ":" in server:
        return "browsers take no IPv6 zone in a URL" if "%" in server else None
    if not _NUMERIC_LABEL.fullmatch(server.rpartition(".")[2]) or _is_urls_ipv4(server):
        return None
    return "browsers read a name that ends in a number as an IPv4 address, and this is none"


def _is_urls_ipv4(server: str) -> bool:
    """Whether the URL Standard's IPv4 parser takes ``server``: up to four numbers
    (decimal, ``0x`` hexadecimal with ``0x`` alone 0, ``0`` octal), the last filling
    the bytes the others leave."""
    parts = server.split(".")
    if not 1 <= len(parts) <= 4:
        return False
    numbers: list[int] = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            digits, base = part[2:] or "0", 16
        elif len(part) > 1 and part[0] == "0":
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        try:
            numbers.append(int(digits, base))
        except ValueError:
            return False
    *first, last = numbers
    return all(number <= 255 for number in first) and last < 256 ** (5 - len(numbers))


def _without_query(url: str) -> str:
    """``url`` with what follows its ``?`` or ``#`` masked: a query may hold a key."""
    cut = min((at for at in (url.find("?"), url.find("#")) if at >= 0), default=-1)
    return url if cut < 0 else url[: cut + 1] + "***"


def doubled_api_path(host: str) -> str | None:
    """The part of ``host``'s path the client adds itself (``/v1`` or ``/v1/batch``), if
    it ends with it: events would go to ``/v1/v1/batch``."""
    path = urlsplit(host).path.rstrip("/")
    for suffix in ("/v1/batch", "/v1"):
        if path.lower().endswith(suffix):
            return suffix
    return None


def redact_url(value: str) -> str:
    """``value`` with any ``user:password@`` part masked, for errors and displays:
    in the server's part as browsers and ``urllib3`` find it, whatever comes before
    (``https://``, ``//``, ``https:/``, or nothing: a value written without its scheme).

    >>> redact_url("https://user:pw@collector.example/v1"), redact_url("user:pw@collector.example")
    ('https://***@collector.example/v1', '***@collector.example')
    """
    if "@" not in value:
        return value
    found = _USERINFO.match(value)
    if found is None:
        return value
    return f"{value[: found.start('userinfo')]}***@{value[found.end('userinfo') :]}"


#: A URL's credentials: what comes before the last ``@`` of its server's part. Spaces
#: and controls before it are skipped, and tabs and newlines in a scheme and around
#: its slashes, as URL parsers skip them; a scheme counts only when slashes follow
#: it (``user:pw@host`` has none); without one, a server's part starts the value or
#: follows ``//``, never one slash (``/@fs/x.js`` is a path). A backslash may be a
#: password's: masked with it (the host shown is then the one after the ``@``).
_USERINFO = re.compile(
    r"[\x00-\x20]*"
    r"(?:[A-Za-z][A-Za-z0-9+.\-\t\n\r]*:[\t\n\r]*(?=[/\\])[/\\\t\n\r]*|[/\\]{2,})?"
    r"(?P<userinfo>[^/?#]*@)"
)


def shown_answer(text: str, secrets: Iterable[str | None]) -> str:
    """What errors and log lines show of a host's answer ``text``: its JSON ``message``,
    ``error`` or ``errors``, else its first line, at most :data:`ANSWER_SHOWN_CHARS`
    long, with each of ``secrets`` (the credentials the request carried) masked and
    any echo of the batch left out. The answer itself stays whole where a hook gets it.

    >>> shown_answer('denied: key=wk_AbCdEfGhIjKl body={"batch":[]}', ["wk_AbCdEfGhIjKl"])
    'denied: key=wk_A… body=…'
    """
    secrets = list(secrets)
    masked = masked_secrets(text, secrets)
    field = _answer_field(masked)
    if field:  # decoded from JSON: a credential it escaped ("\u002B") is whole there
        field = masked_secrets(field, secrets)
    line = (field or masked).strip().split("\n", 1)[0].strip()
    echo = _ECHOED_BATCH.search(line)
    if echo is not None:
        line = line[: echo.start()] + "…"
    if len(line) > ANSWER_SHOWN_CHARS:
        line = line[: ANSWER_SHOWN_CHARS - 1] + "…"
    return "".join(character if character.isprintable() else " " for character in line)


def masked_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each of ``secrets`` masked as :func:`mask_secret` masks it, as
    written and percent-encoded (a login page's ``Location`` carries the request's
    credentials in its query: ``?t=Basic%20d2tf...%3D``).

    >>> masked_secrets("/login?k=wk%2BAbCdEfGh%2FIj%3D&k2=wk+AbCdEfGh/Ij=", ["wk+AbCdEfGh/Ij="])
    '/login?k=wk+A…&k2=wk+A…'
    """
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        masked = mask_secret(secret) or ""
        text = text.replace(secret, masked)
        if "/" in secret:  # as JSON may write it: "\/" (PHP's default)
            text = text.replace(secret.replace("/", "\\/"), masked)
        for encoded in {quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}:
            if encoded != secret:
                # Either case of hex digit: encoders differ (%2f, %2F).
                pieces = re.split(re.escape(encoded), text, flags=re.IGNORECASE)
                text = masked.join(pieces)
    return text


def _answer_field(text: str) -> str | None:
    """The first of the fields a JSON answer says what was wrong in, as text; None when
    ``text`` is no JSON object or has none of them."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        answer = json.loads(text)
    except ValueError:  # not JSON, or cut short
        return None
    for name in _ANSWER_FIELDS:
        value = answer.get(name) if isinstance(answer, dict) else None
        if value is not None and value != "":
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return None


# The full stops UTS #46 reads as a label's end: ideographic, full-width, half-width.
_FULL_STOPS = str.maketrans("\u3002\uff0e\uff61", "...")


def ascii_host_name(name: str) -> str:
    """``name`` (a host name, without a port) in the ASCII form browsers send and
    compare, in lower case: each label that is not ASCII mapped and converted as
    the WHATWG URL Standard does (UTS #46, non-transitional: ``faß.de`` is
    ``xn--fa-hia.de``, not ``fass.de``, and ``CAFÉ``, a decomposed ``café`` and
    ``café`` are one), the full stops of other scripts (``。``) read as dots.

    :class:`ValueError` (a ``UnicodeError``) for a label browsers would refuse.

    >>> ascii_host_name("www.Faß\u3002de")
    'www.xn--fa-hia.de'
    """
    if name.isascii():
        return name.lower()
    # requests' own dependency; imported here, as only a name of another script needs it.
    import idna

    return ".".join(
        label.lower()
        if label.isascii()  # "my_host" too, which idna's stricter rules refuse
        else idna.encode(label, uts46=True, transitional=False).decode("ascii")
        for label in name.translate(_FULL_STOPS).split(".")
    )


def check_write_key(value: object) -> None:
    """Raise ``ValueError`` naming ``write_key`` when it cannot be a write key.

    The key is never shown: only what is wrong with it.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"write_key must be a string, got {type(value).__name__}")
    if value != value.strip():
        raise ValueError("write_key has spaces or line breaks around it (a copy-paste slip?)")
    if ":" in value:
        raise ValueError("write_key must not contain ':' (HTTP Basic would cut the key there)")
    if not value.isprintable() or any(character.isspace() for character in value):
        raise ValueError("write_key must not contain spaces or control characters")
