"""Keyword options -> the client and the web options, checked once, at start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from segment_core import testing
from segment_core.adapters import (
    SERVER_KEY_IN_BROWSER,
    SERVER_KEY_IN_BROWSER_FIX,
    hands_server_key_to_browsers,
    offer_as_default,
    server_write_key,
    shared_client,
)
from segment_core.client import Client
from segment_core.config import ALIASES, closest_name
from segment_core.config import option_names as client_option_names
from segment_core.web import WebOptions, check_plain_hooks
from segment_core.web import option_names as web_option_names
from segment_core.web._validate import ASGI_ASYNC_HOOKS

__all__ = [
    "OWN_OPTIONS",
    "allowed_hosts_of",
    "check_names",
    "make_client",
    "make_web_options",
    "warn_if_server_key_in_browser",
]

logger = logging.getLogger("segment.asgi")

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
        close = closest_name(name, sorted(known))
        hint = f"; did you mean {close!r}?" if close else ""
        raise TypeError(f"SegmentMiddleware got an unknown option {name!r}{hint}")


def make_web_options(web: Mapping[str, Any]) -> WebOptions:
    """Validated web options (a ValueError names a bad one)."""
    options = WebOptions.from_mapping(web)
    check_plain_hooks(options, may_be_async=ASGI_ASYNC_HOOKS)
    return options


def make_client(
    client: Client | None, options: Mapping[str, Any], *, send_in_tests: bool = False
) -> Client | None:
    """The given client, or one built from the client options; None: the default client.

    Options without a write key take the module-level settings for those they leave
    unset (see :mod:`segment_core.adapters`). Instances given the same option values
    (a framework that makes one instance per route) and the same ``send_in_tests``
    share one client: a client is a
    sender thread and a buffer, made once per process. A client built here with a
    write key becomes ``segment_core``'s default client when there is none, so
    ``segment_core.track(...)`` and ``analytics()`` outside a request use it too.
    Under pytest, a client built here puts its events in
    ``segment_core.testing.outbox`` unless ``send_in_tests``.
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
    # Under pytest, one sending in tests and one not: two clients, each with its own
    # test mode (elsewhere send_in_tests changes nothing: one client).
    variant = ("send_in_tests", send_in_tests) if testing.pytest_running() else None
    built = shared_client(options, variant=variant)
    divert_in_tests(built, send_in_tests)  # first: a test's module-level call sends nothing
    offer_as_default(built)
    return built


def divert_in_tests(client: Client, send_in_tests: bool) -> None:
    """Under pytest, ``client``'s events go to ``segment_core.testing.outbox``, not out.

    Instances with the same client options and the same ``send_in_tests`` share
    ``client``.
    """
    testing.divert_in_tests(client, send=send_in_tests, running=testing.pytest_running)


def warn_if_server_key_in_browser(options: WebOptions, client: Client | None) -> None:
    """Log once per process when the snippet's key is the server's: ``client``'s write
    key (None: the default client's, as :func:`make_client` answers for no options)."""
    global _warned_server_key
    if _warned_server_key or options.browser_write_key is None:
        return
    write_key = server_write_key({}) if client is None else client.config.write_key
    if not hands_server_key_to_browsers(options.browser_write_key, write_key):
        return
    _warned_server_key = True
    logger.warning("SegmentMiddleware: %s; %s.", SERVER_KEY_IN_BROWSER, SERVER_KEY_IN_BROWSER_FIX)


_warned_server_key = False


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
