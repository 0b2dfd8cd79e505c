"""Keyword options -> the client and the web options, checked once, at start-up."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import segment_core
from segment_core.client import Client
from segment_core.config import ALIASES
from segment_core.config import option_names as client_option_names
from segment_core.web import WebOptions, check_plain_hooks
from segment_core.web import option_names as web_option_names

__all__ = [
    "OWN_OPTIONS",
    "allowed_hosts_of",
    "check_names",
    "make_client",
    "make_web_options",
]

#: Keywords of the middleware that are neither client nor web options.
OWN_OPTIONS = frozenset({"allowed_hosts", "client", "websockets"})


def check_names(options: Iterable[str]) -> None:
    """An unknown keyword is a TypeError (as for any function) naming the closest option."""
    known = client_option_names() | web_option_names() | OWN_OPTIONS
    for name in options:
        if name in known:
            continue
        if name in ALIASES:
            raise TypeError(
                f"SegmentMiddleware: {name!r} is analytics-python's name; use {ALIASES[name]!r}"
            )
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"SegmentMiddleware got an unknown option {name!r}{hint}")


def make_web_options(web: Mapping[str, Any]) -> WebOptions:
    """Validated web options (a ValueError names a bad one)."""
    options = WebOptions.from_mapping(web)
    check_plain_hooks(options, async_user_id=True)
    return options


def make_client(client: Client | None, options: Mapping[str, Any]) -> Client | None:
    """The given client, or one built from the client options; None: the default client.

    A client built here becomes ``segment_core``'s default client when there is
    none yet, so ``segment_core.track(...)`` and ``analytics()`` outside a
    request use it too.
    """
    if client is not None:
        if not isinstance(client, Client):
            hint = "; pass write_key=... to build one" if isinstance(client, str) else ""
            raise ValueError(
                f"client must be a segment_core.Client, got {type(client).__name__}{hint}"
            )
        if options:
            raise ValueError(
                f"client= and client options ({', '.join(sorted(options))}) were both given: "
                "configure the Client itself, or pass its options here"
            )
        return client
    if not options:
        return None
    built = Client(**options)
    if segment_core.default_client is None:
        segment_core.default_client = built
    return built


def allowed_hosts_of(value: object) -> tuple[str, ...]:
    """``allowed_hosts``, checked as ``TrustedHostMiddleware`` takes them."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(
            f"allowed_hosts must be a list of host names, as TrustedHostMiddleware's, got {value!r}"
        )
    hosts = tuple(value)
    for host in hosts:
        if not isinstance(host, str) or not host or not host.isprintable() or " " in host:
            raise ValueError(f"allowed_hosts must hold host names, got {host!r}")
        if "*" in host[1:] or (host.startswith("*") and host != "*" and host[1] != "."):
            raise ValueError(
                f"allowed_hosts: a wildcard is '*' or a subdomain one like '*.example.com', "
                f"got {host!r}"
            )
    return hosts
