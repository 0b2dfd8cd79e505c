"""Request -> the Spec's ``context``: ip, userAgent, locale, page, campaign.

The client address is the socket peer unless proxies are trusted
(``trusted_proxies``): then ``X-Forwarded-For`` (or, without it, ``Forwarded``)
is walked from the right, skipping trusted hops. Secret-looking query
parameters are redacted before anything leaves the process.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any
from urllib.parse import unquote_plus

from segment_core.web._options import WebOptions
from segment_core.web._request import RequestInfo
from segment_core.web._validate import IPNetwork

__all__ = [
    "REDACTED",
    "anonymize_ip",
    "campaign",
    "client_ip",
    "locale",
    "page_fields",
    "redact_query",
    "redact_url",
    "request_context",
]

REDACTED = "REDACTED"
NO_IP = "0.0.0.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOCALE = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_FORWARDED_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)', re.IGNORECASE)


def request_context(request: RequestInfo, options: WebOptions) -> dict[str, Any]:
    """The context every call made for ``request`` carries."""
    context: dict[str, Any] = {}
    if not options.collect_ip:
        context["ip"] = NO_IP
    else:
        ip = client_ip(request, options.trusted_proxies)
        if ip is not None:
            context["ip"] = _ip_text(ip, options.anonymize_ip)
    user_agent = request.header("user-agent")
    if user_agent:
        context["userAgent"] = user_agent
    language = locale(request.header("accept-language"))
    if language:
        context["locale"] = language
    context["page"] = page_fields(request, options.redacted_names)
    utm = campaign(request.query_string)
    if utm:
        context["campaign"] = utm
    return context


# -- client address -------------------------------------------------------------


def parse_ip(value: str | None) -> IPAddress | None:
    """An address from a header or a peer, without port, brackets or quotes."""
    if not value:
        return None
    return _parse_ip(value)


@functools.lru_cache(maxsize=4096)
def _parse_ip(value: str) -> IPAddress | None:
    # Cached: the same few peers (a proxy, a load balancer) send most requests.
    text = value.strip().strip('"')
    if text.startswith("["):  # "[v6]" or "[v6]:port"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # "v4:port"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@functools.lru_cache(maxsize=4096)
def _ip_text(ip: IPAddress, anonymize: bool) -> str:
    # Cached like _parse_ip: writing an address out costs microseconds, and the
    # same addresses come back.
    return str(anonymize_ip(ip) if anonymize else ip)


def forwarded_hops(request: RequestInfo) -> list[IPAddress | None]:
    """The addresses proxies reported, leftmost (furthest) first; None if unreadable.

    ``X-Forwarded-For`` wins over ``Forwarded`` because it is what nearly every
    proxy appends to; a header the proxy does not write is the client's to forge.
    """
    xff = request.header("x-forwarded-for")
    if xff:
        return [parse_ip(part) for part in xff.split(",")]
    forwarded = request.header("forwarded")
    if forwarded:
        hops: list[IPAddress | None] = []
        for element in forwarded.split(","):
            match = _FORWARDED_FOR.search(element)
            hops.append(parse_ip(match.group(1)) if match else None)
        return hops
    return []


def client_ip(request: RequestInfo, trusted: int | tuple[IPNetwork, ...]) -> IPAddress | None:
    """The end user's address: the peer, or the first untrusted hop from the right.

    With a hop count ``n``, the peer and the ``n - 1`` hops nearest to it are
    proxies. With networks, every hop inside one is a proxy. A peer that is not
    an IP address (a Unix socket) counts as a trusted local proxy.
    """
    peer = parse_ip(request.client_addr)
    if not trusted:
        return peer
    hops = forwarded_hops(request)
    if isinstance(trusted, int):
        chain = [*hops, peer]
        return chain[max(0, len(chain) - 1 - trusted)]
    if peer is not None and not any(peer in network for network in trusted):
        return peer
    for hop in reversed(hops):
        if hop is None or not any(hop in network for network in trusted):
            return hop
    return hops[0] if hops else peer


def anonymize_ip(ip: IPAddress | str) -> IPAddress:
    """Zero the last octet of an IPv4 address, the last 80 bits of an IPv6 one."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    prefix = 24 if address.version == 4 else 48
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address


# -- headers and query ----------------------------------------------------------


def locale(accept_language: str | None) -> str | None:
    """The first language tag of an ``Accept-Language`` header (``en-US``)."""
    if not accept_language:
        return None
    tag = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    return tag if _LOCALE.match(tag) else None


def page_fields(request: RequestInfo, redacted: frozenset[str]) -> dict[str, str]:
    """The Spec's page fields: ``search`` keeps its ``?``, ``url`` has no fragment."""
    query = redact_query(request.query_string, redacted)
    search = f"?{query}" if query else ""
    return {
        "path": request.path,
        "referrer": redact_url(request.header("referer") or "", redacted),
        "search": search,
        "url": f"{request.scheme}://{request.host}{request.path}{search}",
    }


def redact_query(query: str, names: frozenset[str]) -> str:
    """``query`` with the value of every parameter named in ``names`` replaced.

    Names compare case-insensitively after URL-decoding; everything else is kept
    byte for byte.

    >>> redact_query("q=shoes&Token=abc", frozenset({"token"}))
    'q=shoes&Token=REDACTED'
    """
    if not query or not names:
        return query
    parts = query.split("&")
    changed = False
    for index, part in enumerate(parts):
        key, sep, _ = part.partition("=")
        if not sep:
            continue
        name = unquote_plus(key) if "%" in key or "+" in key else key
        if name.strip().lower() in names:
            parts[index] = f"{key}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def redact_url(url: str, names: frozenset[str]) -> str:
    """``url`` with secrets redacted from its query and fragment (never raises)."""
    if not url or not names:
        return url
    base, hash_sign, fragment = url.partition("#")
    head, question, query = base.partition("?")
    redacted = head + question + redact_query(query, names)
    return redacted + hash_sign + redact_query(fragment, names)


def campaign(query: str) -> dict[str, str]:
    """``context.campaign`` from ``utm_*`` parameters, as analytics.js builds it.

    ``utm_campaign`` becomes ``name``; every other ``utm_<x>`` becomes ``<x>``;
    ``+`` decodes to a space; the last value of a repeated parameter wins.

    >>> campaign("utm_campaign=spring+sale&utm_source=news")
    {'name': 'spring sale', 'source': 'news'}
    """
    result: dict[str, str] = {}
    if "utm_" not in query:
        return result
    for part in query.split("&"):
        key, _, value = part.partition("=")
        key = unquote_plus(key)
        if key.startswith("utm_") and len(key) > 4:
            name = key[4:]
            result["name" if name == "campaign" else name] = unquote_plus(value)
    return result
