"""One HTTP exchange with a Segment host, as the sender and the ``status`` command make it.

Requests go through urllib3, the HTTP engine under ``requests``, used directly.
What ``requests`` reads from the environment is read once, when a pool is made:
proxies come from the ``proxies`` option, else from the environment
(``HTTPS_PROXY``, ``NO_PROXY``, ...), which is not used for a host on this machine
(a local collector); TLS is verified with the CA bundle ``REQUESTS_CA_BUNDLE`` or
``CURL_CA_BUNDLE`` names, else with the system's certificates. Only 307 and 308
redirects to the same server are followed, and only the start of an answer's body
is read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from requests.utils import (
    get_auth_from_url,
    get_environ_proxies,
    should_bypass_proxies,
)

from segment_core._clock import monotonic
from segment_core.config import Config, proxy_url
from segment_core.hosts import is_loopback_url, masked_secrets, redact_url, shown_answer, url_port
from segment_core.retry import parse_retry_after

if TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse

__all__ = [
    "CA_BUNDLE_VARIABLES",
    "ERROR_TEXT_BYTES",
    "MAX_REDIRECTS",
    "Answer",
    "SteadyTimeout",
    "connection_pool",
    "exchange",
    "post",
    "proxy_credentials",
]

#: 307 and 308 redirects followed in a row, at most, for one request.
MAX_REDIRECTS = 3
#: Of an answer's body, what is read: enough for an error's text (and all of
#: Segment's ``{"success": true}``, so that its connection is kept).
ERROR_TEXT_BYTES = 500
#: Where ``requests`` reads a CA bundle's path from, in this order.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

logger = logging.getLogger("segment.core")


class SteadyTimeout(urllib3.Timeout):
    """urllib3's ``Timeout``, its ``total`` measured on the library's own clock
    (:mod:`segment_core._clock`), which a test's frozen or ticking clock (freezegun's
    ``auto_tick_seconds``, that moves on at each read) leaves alone: measured on that
    one, no time would be left for an answer."""

    def clone(self) -> SteadyTimeout:
        return SteadyTimeout(connect=self._connect, read=self._read, total=self.total)

    def start_connect(self) -> float:
        if self._start_connect is not None:
            raise urllib3.exceptions.TimeoutStateError("Timeout timer has already been started.")
        self._start_connect = monotonic()
        return self._start_connect

    def get_connect_duration(self) -> float:
        if self._start_connect is None:
            raise urllib3.exceptions.TimeoutStateError("Timeout timer has not started.")
        return monotonic() - self._start_connect


#: What :func:`_warn_once` has logged.
_warned: set[str] = set()


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status, its headers and the start of its body."""

    status: int
    headers: Mapping[str, str]
    #: At most the ``body_limit`` asked for; empty when the body could not be read.
    body: bytes
    #: Why this answer, a redirect, was not followed; "" for any other answer.
    unfollowed: str = ""
    #: A redirect not followed only because it asked to wait (``Retry-After``).
    deferred: bool = False

    def shown(self, secrets: Iterable[str | None], text: str | None = None) -> str:
        """What errors and log lines show of this answer, each of ``secrets`` masked:
        why a redirect was not followed (its ``Location`` may name one, a login page's
        ``?next=...&writeKey=...``), else a short part of its body (:func:`shown_answer`;
        ``text``: the body as its caller decoded it)."""
        if self.unfollowed:
            return masked_secrets(self.unfollowed, secrets)
        return shown_answer(self.body.decode("utf-8", "replace") if text is None else text, secrets)


def post(
    pool: urllib3.PoolManager,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: urllib3.Timeout,
    body_limit: int,
) -> Answer:
    """POST ``body`` to ``url``, following 307 and 308 redirects on the same server.

    Raises urllib3's ``HTTPError`` when no answer came. A 307 or 308 keeps the
    method and the body, so it is followed, at most :data:`MAX_REDIRECTS` times
    in a row. Another server is never sent the request: its body and headers
    carry the credentials (the write key, a client assertion) meant for the
    configured one alone. A redirect that is not followed is the answer, saying why.
    ``timeout``'s total bounds the whole chain: each hop gets what is left of it.
    """
    budget = timeout.total if isinstance(timeout.total, (int, float)) else None
    started = monotonic()
    hops = 0
    while True:
        answer = exchange(
            pool, "POST", url, body=body, headers=headers, timeout=timeout, body_limit=body_limit
        )
        if not 300 <= answer.status < 400:
            return answer
        target, unfollowed = _redirect_target(url, answer, hops)
        if target is None:
            return replace(answer, unfollowed=unfollowed)
        wait = parse_retry_after(answer.headers.get("Retry-After"))
        if wait is not None:
            # Retry-After is the least wait before following it (RFC 9110): the retry
            # after that wait asks the configured URL again, and is redirected then.
            return replace(
                answer,
                unfollowed=f"redirect to {redact_url(target)} asks to wait {wait:g} s",
                deferred=True,
            )
        url, hops = target, hops + 1
        if budget is not None:
            left = budget - (monotonic() - started)
            if left <= 0:
                raise urllib3.exceptions.TimeoutError(
                    f"redirected {hops} time(s); the timeout of {budget:g} s ran out "
                    f"before {redact_url(url)} was asked"
                )
            timeout = SteadyTimeout(total=left)


def exchange(
    pool: urllib3.PoolManager,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str],
    timeout: urllib3.Timeout,
    body_limit: int,
) -> Answer:
    """One request, no redirect followed; raises urllib3's ``HTTPError`` when no answer came."""
    response = pool.request(
        method,
        url,
        body=body,
        headers=headers,
        timeout=timeout,
        retries=False,
        redirect=False,
        preload_content=False,
    )
    return Answer(response.status, response.headers, _body_start(response, body_limit))


def _body_start(response: BaseHTTPResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is never read.

    A body that ends within them gives its connection back to the pool (urllib3
    does it on reaching the end); a longer one closes it, rather than reading on
    through an error page that may be hundreds of megabytes.
    """
    try:
        return response.read(limit)
    except (urllib3.exceptions.HTTPError, OSError):
        # The status line has come: the answer is that status, whatever befalls its
        # body (cut short, mislabelled as gzip). A 2xx taken for a network error
        # would have its batch sent again, for ever with a spool.
        return b""
    finally:
        response.close()
        response.release_conn()


def _redirect_target(url: str, answer: Answer, hops: int) -> tuple[str | None, str]:
    """Where to send the request that ``url`` answered with a redirect: (target, "")
    to follow it, else (None, why not)."""
    location = answer.headers.get("Location")
    if not location:
        return None, "a redirect without a Location"
    try:
        target = urljoin(url, location.strip())
    except ValueError:
        return None, f"a redirect to {redact_url(location)!r}, which is not a URL"
    shown = redact_url(target)
    if answer.status not in (307, 308):
        # 301, 302 and 303 let clients turn a POST into a GET without its body.
        return None, f"redirect to {shown} not followed: only 307 and 308 keep a POST's body"
    if not _same_server(url, target):
        origin = redact_url(f"{urlsplit(url).scheme}://{urlsplit(url).netloc}")
        return None, (
            f"redirect to {shown} not followed: it leaves {origin}, "
            "and the request carries credentials for that server alone"
        )
    if hops >= MAX_REDIRECTS:
        return None, f"redirect to {shown} not followed: {MAX_REDIRECTS} redirects in a row already"
    return target, ""


def _same_server(url: str, target: str) -> bool:
    """Whether ``target`` is the server of ``url``, or the same host moved from http to
    https on the default ports (as ``requests`` keeps credentials on a redirect)."""
    try:
        here, there = urlsplit(url), urlsplit(target)
        ports = (url_port(here), url_port(there))
    except ValueError:
        return False
    if not there.hostname or here.hostname != there.hostname:
        return False
    if (here.scheme, ports[0]) == (there.scheme, ports[1]):
        return True
    return (here.scheme, ports[0], there.scheme, ports[1]) == ("http", 80, "https", 443)


def connection_pool(url: str, config: Config | None, *, size: int) -> urllib3.PoolManager:
    """A pool keeping ``size`` connections to ``url``: through the proxy ``config`` (or the
    environment; the environment alone without ``config``) names, verifying TLS with the
    CA bundle the environment names."""
    ca_certs, ca_cert_dir = _trust_store()
    proxy = _proxy_for(url, config)
    if not proxy:
        return urllib3.PoolManager(maxsize=size, ca_certs=ca_certs, ca_cert_dir=ca_cert_dir)
    username, password = get_auth_from_url(proxy)
    proxy_headers = (
        urllib3.make_headers(proxy_basic_auth=f"{username}:{password}") if username else None
    )
    return urllib3.ProxyManager(
        proxy,
        maxsize=size,
        proxy_headers=proxy_headers,
        ca_certs=ca_certs,
        ca_cert_dir=ca_cert_dir,
    )


def _proxy_for(url: str, config: Config | None) -> str | None:
    """The proxy URL to reach ``url`` through, if any, as ``requests`` picks it: the
    environment's proxies fill the keys the ``proxies`` given do not name (a
    ``no_proxy`` given replaces ``$NO_PROXY`` for them, and for them alone), a key
    given as None keeps the environment's out and is dropped, and the most specific
    key left decides (an empty one: no proxy). A ``no_proxy`` given also bypasses the
    proxies given beside it."""
    given = dict(config.proxies) if config is not None and config.proxies else {}
    no_proxy = given.get("no_proxy")
    # Unlike requests, a no_proxy given bypasses the proxies given beside it too (see
    # the README's differences): what its users mean by it.
    if no_proxy and should_bypass_proxies(url, no_proxy=no_proxy):
        return None
    # A collector on this machine: the environment's HTTP_PROXY is for the network.
    environment = {} if is_loopback_url(url) else get_environ_proxies(url, no_proxy=no_proxy)
    merged = {key: value for key, value in {**environment, **given}.items() if value is not None}
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    keys = [scheme, "all"]
    if parts.hostname:
        keys = [f"{scheme}://{parts.hostname}", scheme, f"all://{parts.hostname}", "all"]
    key = next((key for key in keys if key in merged), None)
    if key is None or not merged[key]:  # an empty one: no proxy
        return None
    if key in given:
        return proxy_url(given[key])  # checked when the client was built
    variable = _proxy_variable(key)
    try:
        return proxy_url(environment[key], name=variable)
    except ValueError as error:
        # A proxy of the environment is every program's, set for some other one (a SOCKS
        # ALL_PROXY of a VPN client or of ssh -D) or mistyped: advice, where a bad
        # proxies option is an error. The app must start, and events still go out.
        _warn_once(
            f"Segment: {error}; connecting without a proxy "
            "(the proxies option sets one for Segment alone)"
        )
        return None


def _proxy_variable(key: str) -> str:
    """The environment variable a proxy of ``key`` (``https``, ``all``) came from."""
    name = f"{key}_proxy"
    if name in os.environ:  # the lower-case name wins, as urllib reads them
        return name
    for variable in os.environ:
        if variable.lower() == name:
            return variable
    return f"the system's {key} proxy setting"


def _trust_store() -> tuple[str | None, str | None]:
    """The CA certificates hosts are verified with: (a bundle file, a directory).

    As ``requests`` reads them (so analytics-python): ``REQUESTS_CA_BUNDLE``, else
    ``CURL_CA_BUNDLE``, a file or a directory of certificates. Without either,
    neither: the system's store, which urllib3 loads.
    """
    for variable in CA_BUNDLE_VARIABLES:
        path = os.environ.get(variable)
        if not path:  # an empty one is unset, for requests too
            continue
        if os.path.isdir(path):
            return None, path
        if os.path.isfile(path):
            return path, None
        _warn_once(
            f"Segment: {variable}={path!r} is no file or directory; "
            "verifying TLS with the system's certificates instead"
        )
        break
    return None, None


def _warn_once(message: str) -> None:
    """Log ``message`` once a process: every client (and every fork) reads the same
    environment, and would repeat it."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def proxy_credentials(pool: object) -> tuple[str, ...]:
    """What a proxy's answer may echo of the credentials the pool sends it (its
    ``Proxy-Authorization``'s Basic token, the password in its URL): none without a
    proxy."""
    found: list[str] = []
    for name, value in (getattr(pool, "proxy_headers", None) or {}).items():
        if str(name).lower() == "proxy-authorization":
            found.append(str(value).partition(" ")[2])
    auth = getattr(getattr(pool, "proxy", None), "auth", None)
    if isinstance(auth, str):
        found.extend(part for part in (auth, unquote(auth.partition(":")[2])) if part)
    return tuple(found)
