"""Request -> the Spec's ``context``: ip, userAgent, locale, page, campaign.

The client address, scheme and host come from trusted proxies when there are
some (see :mod:`segment_core.web._forwarded`). Secrets are redacted before
anything leaves the process, and everything the visitor sends is cut to a
documented size, so no request can push a message over Segment's 32 KB:

- path, query string (``search``) and ``referrer``: 2,048 characters each;
- ``userAgent``: 512; the host: 255; each ``campaign`` value: 256;
- ``locale``: one language tag of at most 35 characters;
- the whole context: 12 KB JSON-encoded (:data:`MAX_CONTEXT_BYTES`), where
  backslashes, quotes and non-ASCII text take more bytes than characters.

Control characters (tab, CR, LF, NUL, DEL, Unicode's line separators...), which no
browser puts in these, are dropped from ``userAgent`` and ``campaign`` values: each
run of them becomes one space, whatever the server let through, and Unicode's
bidirectional controls are removed (``without_controls``); a ``referrer`` has its C0
controls made spaces and every other character outside ASCII percent-escaped. A
``userAgent`` in UTF-8, which servers hand on as the latin-1 of its bytes, is read as
UTF-8.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import orjson

from segment_core.web._forwarded import IPAddress, client_ip, forwarded_hops, parse_ip
from segment_core.web._options import WebOptions
from segment_core.web._redaction import REDACTED, Redactor, name_and_port, redact_path, same_host
from segment_core.web._request import (
    RequestInfo,
    escaped_non_ascii,
    header_text,
    short_value_cache,
    without_controls,
    without_fragment,
)

__all__ = [
    "MAX_CONTEXT_BYTES",
    "MAX_HOST",
    "MAX_PATH",
    "MAX_QUERY",
    "MAX_REDACTED",
    "MAX_REFERRER",
    "MAX_USER_AGENT",
    "REDACTED",
    "anonymize_ip",
    "campaign",
    "client_ip",
    "context_ip",
    "cut",
    "encoded_size",
    "fit_context",
    "forwarded_hops",
    "locale",
    "page_fields",
    "parse_ip",
    "redact_query",
    "redact_url",
    "request_context",
]

NO_IP = "0.0.0.0"
MAX_PATH = 2048
MAX_QUERY = 2048
MAX_REFERRER = 2048
#: What of a query string or Referer is read to redact it (then cut to the above):
#: enough for a secret past the cut to be known (a GraphQL document after its
#: variables), bounded whatever the visitor sends.
MAX_REDACTED = 16 * 1024
MAX_USER_AGENT = 512
MAX_HOST = 255
MAX_CAMPAIGN_VALUE = 256
MAX_LOCALE = 35
#: What the context of one request may weigh, JSON-encoded: well under half of a
#: message's 32 KB, so that a view's own call keeps the rest, and the automatic page
#: call, which carries the page fields twice (``context.page`` and ``properties``), fits.
MAX_CONTEXT_BYTES = 12 * 1024

_dumps = orjson.dumps

_LOCALE = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def request_context(
    request: RequestInfo,
    options: WebOptions,
    *,
    scheme: str | None = None,
    host: str | None = None,
    secret_values: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The context every call made for ``request`` carries.

    ``scheme`` and ``host`` are the visitor's (default: the request's);
    ``secret_values`` are route parameter values to hide in the path.
    """
    context: dict[str, Any] = {}
    ip = context_ip(request, options)
    if ip is not None:
        context["ip"] = ip
    get = request.headers.get
    user_agent = get("user-agent")
    if user_agent and not (user_agent.isascii() and user_agent.isprintable()):
        user_agent = header_text(user_agent)
    if user_agent:
        context["userAgent"] = (
            user_agent if len(user_agent) <= MAX_USER_AGENT else cut(user_agent, MAX_USER_AGENT)
        )
    accept_language = get("accept-language")
    if accept_language:
        language = locale(accept_language)
        if language:
            context["locale"] = language
    context["page"] = page_fields(
        request, options.redactor, scheme=scheme, host=host, secret_values=secret_values
    )
    query = request.query_string
    if "utm_" in query:  # campaign() finds nothing in a query without one
        query = without_fragment(query)
        if len(query) > MAX_REDACTED:  # as search is read: the parameters after a long one
            query = bounded_query(query, MAX_REDACTED, options.redactor)
        # Redacted as search is: a secret utm_ name, or a URL with secrets as a value.
        utm = campaign(
            options.redactor.query(
                query, paths=request.route_of_path, host=request.host if host is None else host
            )
        )
        if utm:
            context["campaign"] = utm
    try:
        if len(_dumps(context)) <= MAX_CONTEXT_BYTES:
            return context
    except TypeError:  # a lone surrogate, which orjson refuses: measured otherwise
        pass
    fit_context(context)
    return context


def context_ip(request: RequestInfo, options: WebOptions) -> str | None:
    """``context.ip`` for ``request``: ``0.0.0.0`` with ``collect_ip`` off, else the
    client's address (anonymized with ``anonymize_ip``); None when it is not known."""
    if not options.collect_ip:
        return NO_IP
    if not options.trusted_proxies:
        return _peer_text(request.client_addr, options.anonymize_ip)
    ip = client_ip(request, options.trusted_proxies)
    return None if ip is None else _ip_text(ip, options.anonymize_ip)


def fit_context(context: dict[str, Any], limit: int = MAX_CONTEXT_BYTES) -> None:
    """Cut what the visitor sent in ``context`` until it weighs at most ``limit`` bytes
    JSON-encoded (or nothing of the visitor's is left to cut).

    The referrer gives way first, then the query (``search``, and ``url`` with it),
    the User-Agent, the campaign, and last the path; each is cut by what is too much,
    never in the middle of a ``%XX`` escape.
    """
    excess = encoded_size(context) - limit
    if excess > 0:
        _give_way(context, excess)


def _give_way(context: dict[str, Any], excess: int) -> None:
    """Cut ``excess`` bytes (encoded) of what the visitor sent from ``context``."""
    page = context.get("page")
    if not isinstance(page, dict):
        page = {}
    # Each field's bytes are counted as it is cut: the whole is measured once.
    excess -= _shorten(page, "referrer", excess)
    if excess > 0:
        excess -= _shorten_in_url(page, "search", excess)
    if excess > 0:
        excess -= _shorten(context, "userAgent", excess)
    if excess > 0 and "campaign" in context:
        excess -= encoded_size(context.pop("campaign")) + len('"campaign":,')  # key, comma
    if excess > 0:
        _shorten_in_url(page, "path", excess)


def _shorten(fields: dict[str, Any], name: str, excess: int) -> int:
    """Cut ``excess`` bytes from text ``fields[name]``: how many it cut."""
    text = fields.get(name)
    if not isinstance(text, str) or not text:
        return 0
    size = _text_size(text)
    fields[name], left = _cut_to_size(text, size - excess)
    return size - left


def _shorten_in_url(page: dict[str, Any], name: str, excess: int) -> int:
    """:func:`_shorten` for the page's ``path`` or ``search``, cut from ``url`` too."""
    path, search, url = page.get("path"), page.get("search"), page.get("url")
    if not (isinstance(path, str) and isinstance(search, str) and isinstance(url, str)):
        return _shorten(page, name, excess)
    if not url.endswith(path + search):  # a url of the view's: on its own
        return _shorten(page, name, excess)
    origin = url[: len(url) - len(path) - len(search)]
    cut_bytes = _shorten(page, name, (excess + 1) // 2)  # each one counts twice
    if page["search"] == "?":
        page["search"] = ""
    page["url"] = origin + page["path"] + page["search"]
    return 2 * cut_bytes


def encoded_size(value: object) -> int:
    """How many bytes ``value`` takes JSON-encoded (at most: text with a lone surrogate,
    which the client replaces, is measured as ``\\udXXX``)."""
    try:
        return len(_dumps(value))
    except TypeError:
        return len(json.dumps(value))


def _text_size(text: str) -> int:
    return encoded_size(text) - 2  # without its quotes


def _cut_to_size(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to weigh at most ``limit`` bytes encoded (see :func:`cut`), and
    what it weighs then (at most)."""
    end, size = min(len(text), max(limit, 0)), 0  # a character takes a byte at least
    while end > 0:
        size = _text_size(text[:end])
        if size <= limit:
            break
        # Cut in proportion: text that weighs alike throughout fits at the next try.
        end = end * limit // size
    return cut(text, end), (size if end > 0 else 0)


@functools.lru_cache(maxsize=4096)
def _peer_text(peer: str | None, anonymize: bool) -> str | None:
    # The socket peer's address as context.ip writes it, by the peer's own text.
    ip = parse_ip(peer)
    return None if ip is None else _ip_text(ip, anonymize)


@functools.lru_cache(maxsize=4096)
def _ip_text(ip: IPAddress, anonymize: bool) -> str:
    # Cached: writing an address out costs microseconds, and the same addresses
    # come back.
    return str(anonymize_ip(ip) if anonymize else ip)


def anonymize_ip(ip: IPAddress | str) -> IPAddress:
    """Zero the last octet of an IPv4 address, the last 80 bits of an IPv6 one; of
    a 6to4 address (``2002::/16``), which holds its IPv4 address in the next 32
    bits, all but the 2002 and that address's first three octets."""
    import ipaddress

    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    prefix = 24 if address.version == 4 else 48
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        prefix = 40
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, never in the middle of a ``%XX`` escape."""
    if len(text) <= limit:
        return text
    text = text[:limit]
    percent = text.rfind("%", -2)
    return text[:percent] if percent >= 0 else text


def bounded_query(query: str, limit: int, redactor: Redactor) -> str:
    """``query`` cut to ``limit`` characters to be redacted, except that a parameter
    whose name is secret counts by its name alone: its value, however long (a JSON
    Web Token, a SAML response), is redacted whole, and the parameters after it are
    kept (``q``, ``utm_source``)."""
    kept: list[str] = []
    start = 0
    while len(query) - start > limit > 0:
        end = query.rfind("&", start, start + limit)
        if end >= 0:  # whole parameters, and their "&", within what is left
            kept.append(query[start : end + 1])
            limit -= end + 1 - start
            start = end + 1
        # The parameter at start runs past what is left.
        name, equals, _ = query[start : start + limit].partition("=")
        if not equals or ";" in name or not redactor.is_secret(unquote_plus(name)):
            break  # cut in its value (or its name): the first characters are redacted
        end = query.find("&", start)
        if end < 0:
            return "".join(kept) + name + "="
        kept.append(name + "=&")  # its value redacted whole, whatever it was
        limit -= len(name) + 2
        start = end + 1
    return "".join(kept) + cut(query[start:], max(limit, 0))


# -- headers and query ----------------------------------------------------------


def locale(accept_language: str | None) -> str | None:
    """The preferred language tag of an ``Accept-Language`` header (``en-US``): the
    first of the highest quality, never one of ``q=0`` (not acceptable), with ``_``
    written ``-`` as analytics.js reports it."""
    if not accept_language:
        return None
    head = accept_language
    if len(head) > _LOCALE_HEAD:  # whole entries only: a cut one is another tag
        head = head[: head.rfind(",", 0, _LOCALE_HEAD + 1) + 1]
    return _preferred_language(head)


#: How much of ``Accept-Language`` is read: a browser's whole list, a few tags.
_LOCALE_HEAD = 256


@functools.lru_cache(maxsize=256)
def _preferred_language(head: str) -> str | None:
    # By the header's start: browsers send a few values, the same for many visitors.
    best: str | None = None
    best_quality = 0.0
    for entry in head.split(","):
        tag, _, parameters = entry.partition(";")
        tag = tag.strip()
        quality = _quality(parameters)
        if quality > best_quality and len(tag) <= MAX_LOCALE and _LOCALE.fullmatch(tag):
            best, best_quality = _canonical_case(tag.replace("_", "-")), quality
            if quality >= 1.0:
                break  # none comes before the first of the highest quality
    return best


def _canonical_case(tag: str) -> str:
    """A language tag in the case browsers report (``navigator.language``): the
    language in lower case, a script capitalised, a region in upper case, up to a
    singleton (``x-``, private use), after which all is lower case.

    >>> _canonical_case("FR-ca"), _canonical_case("zh-hant-tw"), _canonical_case("es-419")
    ('fr-CA', 'zh-Hant-TW', 'es-419')
    """
    subtags = tag.lower().split("-")
    if len(subtags[0]) == 1:  # x-klingon, i-navajo: private use, or an old tag
        return "-".join(subtags)
    for at in range(1, len(subtags)):
        subtag = subtags[at]
        if len(subtag) == 1:
            break
        if len(subtag) == 2 and subtag.isalpha():
            subtags[at] = subtag.upper()
        elif len(subtag) == 4 and subtag.isalpha():
            subtags[at] = subtag.title()
    return "-".join(subtags)


def _quality(parameters: str) -> float:
    """The ``q`` of a language range's parameters (``q=0.8``); 1 without one, 0 if bad."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def page_fields(
    request: RequestInfo,
    redactor: Redactor,
    *,
    scheme: str | None = None,
    host: str | None = None,
    secret_values: tuple[str, ...] = (),
) -> dict[str, str]:
    """The Spec's page fields: ``search`` keeps its ``?``, ``url`` has no fragment.

    Secrets are redacted from the query, the path (``secret_values``) and the
    referrer; every field is cut to its size. An unknown host gives no ``url``.
    """
    path = request.path
    if secret_values:
        path = redact_path(path, secret_values)
    if ";" in path:  # /cart;jsessionid=...
        path = redactor.path_parameters(path)
    if len(path) > MAX_PATH:
        path = cut(path, MAX_PATH)
    host = request.host if host is None else host
    query = request.query_string
    if query:
        # The app's router and host, for its own paths and URLs in values
        # (?next=/invite/KEY, ?next=https://shop.example/invite/KEY).
        query = without_fragment(query)
        if len(query) > MAX_REDACTED:  # the work is bounded, whatever was sent
            query = bounded_query(query, MAX_REDACTED, redactor)
        query = redactor.query(query, paths=request.route_of_path, host=host)
        if len(query) > MAX_QUERY:
            query = cut(query, MAX_QUERY)
    search = f"?{query}" if query else ""
    scheme = request.scheme if scheme is None else scheme
    if len(host) > MAX_HOST:
        host = cut(host, MAX_HOST)
    referrer = request.headers.get("referer")
    if referrer and not (referrer.isascii() and referrer.isprintable()):
        # A raw URL's bytes percent-encoded as a browser sends them, and no controls.
        referrer = without_controls(escaped_non_ascii(referrer))
    fields = {
        "path": path,
        "referrer": _referrer(referrer, request, redactor, host) if referrer else "",
        "search": search,
    }
    if host:
        fields["url"] = f"{scheme}://{host}{path}{search}"
    return fields


def _referrer(referrer: str, request: RequestInfo, redactor: Redactor, host: str) -> str:
    """The ``Referer``, redacted; a page of this app also loses secrets in its path.

    A page of this app: on the app's host, as :func:`same_host` tells it (with or
    without ``www.``; any scheme:
    behind a proxy that ends TLS, its hops not trusted, the app sees http where the
    browser's ``Referer`` says https).
    """
    lookup = request.route_of_path
    if len(referrer) > MAX_REDACTED:  # the work is bounded, whatever was sent
        start = referrer.find("?", 0, MAX_REDACTED) + 1
        referrer = (
            referrer[:start] + bounded_query(referrer[start:], MAX_REDACTED - start, redactor)
            if start
            else cut(referrer, MAX_REDACTED)
        )
    referrer = redactor.url(referrer, paths=lookup, host=host)
    if lookup is not None and host and _may_name(referrer, host):
        try:
            parts = urlsplit(referrer)
            if same_host(parts.netloc, host):
                values = redactor.secret_values(lookup(parts.path))
                if values:
                    referrer = parts._replace(path=redact_path(parts.path, values)).geturl()
        except Exception:  # an odd URL, or the router failed on it: left as redacted
            pass
    return referrer if len(referrer) <= MAX_REFERRER else cut(referrer, MAX_REFERRER)


def _may_name(url: str, host: str) -> bool:
    """Whether ``url``'s host name starts as ``host``'s does, ``www.`` or not: a
    look at its first characters, before it is parsed (most referrers are another
    site's)."""
    name = name_and_port(host)[0].removeprefix("www.")
    start = url.find("//", 0, 16) + 2
    if start < 2:
        return False
    if url[start : start + 4].lower() == "www.":
        start += 4
    return url[start : start + len(name)].lower() == name


def redact_query(query: str, names: Redactor | frozenset[str]) -> str:
    """``query`` with the value of every secret parameter replaced by ``REDACTED``.

    ``names``: a :class:`Redactor` (``WebOptions().redactor`` is the adapters'
    rule: the default words and the rules that go with them, and
    ``redact_query_params``), or the only names that count, as with
    ``replace_default_redact_query_params`` (the default words given so are words
    alone, without those rules).

    >>> redact_query("q=shoes&Token=abc", Redactor())
    'q=shoes&Token=REDACTED'
    """
    return _redactor(names).query(query)


def redact_url(url: str, names: Redactor | frozenset[str]) -> str:
    """``url`` with secrets redacted from its query and fragment (never raises);
    ``names`` as for :func:`redact_query`."""
    return _redactor(names).url(url)


def _redactor(names: Redactor | frozenset[str]) -> Redactor:
    return names if isinstance(names, Redactor) else Redactor(names, defaults=False)


def campaign(query: str) -> dict[str, str]:
    """``context.campaign`` from ``utm_*`` parameters, as analytics.js builds it.

    As analytics.js reads a query: a ``?`` separates parameters as ``&`` does; a name
    that holds ``utm_`` anywhere counts (what follows its first four characters names
    the field: ``utm_campaign`` is ``name``, ``utm_source`` ``source``), not decoded;
    its value is what stands between its first and second ``=``, decoded (``+`` a
    space) where it decodes; the last of a repeated name wins. Each value is cut to
    256 characters (the caller cuts the query itself), control characters become a
    space.

    >>> campaign("utm_campaign=spring+sale&utm_source=news?utm_medium=email")
    {'name': 'spring sale', 'source': 'news', 'medium': 'email'}
    """
    if "utm_" not in query:
        return {}
    return dict(_campaign(query))  # a dict of the caller's own: the cached one stays as made


@short_value_cache(maxsize=256)
def _campaign(query: str) -> dict[str, str]:
    # By the query: a campaign's links bring the same one, visitor after visitor.
    result: dict[str, str] = {}
    for part in query.replace("?", "&").split("&"):
        key, *values = part.split("=", 2)
        if "utm_" not in key or len(key) <= 4:
            continue
        value = values[0] if values else ""
        if "%" in value or "+" in value:
            value = _decoded_as_in_a_browser(value)
        if not value.isprintable():
            value = without_controls(value)
        name = key[4:64]
        result["name" if name == "campaign" else name] = value[:MAX_CAMPAIGN_VALUE]
    return result


def _decoded_as_in_a_browser(value: str) -> str:
    r"""``decodeURIComponent(value.replace(/\+/g, " "))``, or ``value`` as it is where
    that throws (an escape not of two hex digits, bytes that are not UTF-8)."""
    if _BROKEN_ESCAPE.search(value):
        return value
    try:
        return unquote(value.replace("+", " "), errors="strict")
    except UnicodeDecodeError:
        return value


_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
