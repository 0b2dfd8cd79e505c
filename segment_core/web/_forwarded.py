"""What trusted proxies say about the visitor: address, scheme and host.

Nothing a proxy header says is believed unless ``trusted_proxies`` says the peer
is a proxy. Then the entries the trusted proxies appended are walked from the
right, and the first one that is not a trusted proxy's is the visitor.
``Forwarded`` (RFC 7239) is read first: a client can write an ``X-Forwarded-For``
of its own, and what the proxy wrote in ``Forwarded`` must win over it.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from segment_core.web._request import PORT_PATTERN, RequestInfo, cached_for_short_text, checked_host
from segment_core.web._validate import IPNetwork

__all__ = ["IPAddress", "client_ip", "forwarded_hops", "forwarded_origin", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Trusted = int | tuple[IPNetwork, ...]

_PAIR = re.compile(r'(?<![A-Za-z])([A-Za-z]+)\s*=\s*("[^"]*"|[^;,\s]*)')
_HOST = re.compile(rf"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::{PORT_PATTERN})?$")
_SCHEMES = frozenset({"http", "https"})


def parse_ip(value: str | None) -> IPAddress | None:
    """An address from a header or a peer, without port, brackets or quotes."""
    if not value or len(value) > _MAX_ADDRESS:
        return None
    return _parse_ip(value)


# The longest address text there is: "[v6]:port", a zone id of an interface's name.
_MAX_ADDRESS = 100
#: The hops of a forwarding header that are read, from the right (the nearest
#: proxies'): more than any chain of proxies has. The entries left of them are
#: what the client itself claimed, and not parsed, however many it sent.
MAX_HOPS = 32
_LONG_HEADER = 1024


def _nearest_hops(header: str) -> str:
    """``header`` with only its :data:`MAX_HOPS` rightmost entries, if it has more."""
    if len(header) <= _LONG_HEADER:
        return header
    entries = header.rsplit(",", MAX_HOPS)
    return ",".join(entries[1:]) if len(entries) > MAX_HOPS else header


@functools.lru_cache(maxsize=4096)
def _parse_ip(value: str) -> IPAddress | None:
    # Cached: the same few peers (a proxy, a load balancer) send most requests.
    text = value.strip().strip('"')
    if text.startswith("["):  # "[v6]" or "[v6]:port"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # "v4:port"
        text = text.partition(":")[0]
    # A zone id ("fe80::1%eth0") names an interface of the sender's: no part of
    # the visitor's address.
    text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@cached_for_short_text(maxsize=1024)
def _forwarded_elements(header: str) -> tuple[dict[str, str], ...]:
    """``Forwarded`` as one dict of lower-case keys per element, leftmost first."""
    elements = []
    for element in header.split(","):
        pairs = {}
        for match in _PAIR.finditer(element):
            pairs[match.group(1).lower()] = match.group(2).strip('"')
        elements.append(pairs)
    return tuple(elements)


def forwarded_hops(request: RequestInfo) -> list[IPAddress | None]:
    """The addresses proxies reported, leftmost (furthest) first; None if unreadable."""
    forwarded = request.header("forwarded")
    if forwarded:
        elements = _forwarded_elements(_nearest_hops(forwarded))
        return [parse_ip(element.get("for")) for element in elements]
    xff = request.header("x-forwarded-for")
    if xff:
        return [parse_ip(part) for part in _nearest_hops(xff).split(",")]
    return []


def _is_trusted(ip: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    return ip is not None and any(ip in network for network in networks)


def _visitor_index(hops: list[IPAddress | None], peer: IPAddress | None, trusted: Trusted) -> int:
    """Index in ``hops`` of the entry that describes the visitor; -1: the peer itself."""
    if not trusted or not hops:
        return -1
    if isinstance(trusted, int):
        # The peer is the nearest trusted proxy; the n - 1 hops nearest to it too.
        return max(0, len(hops) - trusted)
    if peer is not None and not _is_trusted(peer, trusted):
        return -1
    for index in range(len(hops) - 1, -1, -1):
        if not _is_trusted(hops[index], trusted):
            return index
    return 0


def client_ip(request: RequestInfo, trusted: Trusted) -> IPAddress | None:
    """The end user's address: the peer, or the first untrusted hop from the right.

    With a hop count ``n``, the peer and the ``n - 1`` hops nearest to it are
    proxies. With networks, every hop inside one is a proxy. A peer that is not
    an IP address (a Unix socket) counts as a trusted local proxy.
    """
    peer = parse_ip(request.client_addr)
    if not trusted:
        return peer
    hops = forwarded_hops(request)
    index = _visitor_index(hops, peer, trusted)
    return peer if index < 0 else hops[index]


def forwarded_origin(request: RequestInfo, trusted: Trusted) -> tuple[str, str]:
    """``(scheme, host)`` the visitor used, as the trusted proxy reported them.

    Without trusted proxies (or a peer that is not one), the request's own. A
    forwarded host that is malformed (a port out of 1 to 65535 too), or that the
    framework does not trust (``RequestInfo.host_trusted``), is ignored: the
    request's host stays. One taken is in lower case, as browsers write a host.
    """
    scheme, host = request.scheme, request.host
    if not trusted:
        return scheme, host
    peer = parse_ip(request.client_addr)
    if not isinstance(trusted, int) and peer is not None and not _is_trusted(peer, trusted):
        return scheme, host
    forwarded = request.header("forwarded")
    claimed_scheme: str | None
    claimed_host: str | None
    if forwarded:
        elements = _forwarded_elements(_nearest_hops(forwarded))
        hops = [parse_ip(element.get("for")) for element in elements]
        index = _visitor_index(hops, peer, trusted)
        element = elements[max(index, 0)] if elements else {}
        claimed_scheme, claimed_host = element.get("proto"), element.get("host")
    else:
        hops = forwarded_hops(request)
        index = _visitor_index(hops, peer, trusted)
        claimed_scheme = _entry(request.header("x-forwarded-proto"), index, len(hops))
        claimed_host = _entry(request.header("x-forwarded-host"), index, len(hops))
    if claimed_scheme and claimed_scheme.strip().lower() in _SCHEMES:
        scheme = claimed_scheme.strip().lower()
    if claimed_host:
        claimed_host = claimed_host.strip()
        check = request.host_trusted
        if _HOST.fullmatch(claimed_host) and (check is None or check(claimed_host)):
            host = checked_host(claimed_host)
    return scheme, host


def _entry(header: str | None, index: int, hop_count: int) -> str | None:
    """The entry of a comma-separated ``X-Forwarded-*`` header for the visitor's hop.

    Proxies that overwrite the header leave one value (the one to take); proxies
    that append leave one per hop, aligned with ``X-Forwarded-For`` from the right.
    """
    if not header:
        return None
    values = header.split(",")
    if len(values) == 1:
        return values[0]
    # Entries from the right, the visitor's included; with no hops to align with
    # (no X-Forwarded-For), the one the trusted peer itself wrote: the last.
    offset = max(1, hop_count - max(index, 0))
    return values[max(0, len(values) - offset)]
