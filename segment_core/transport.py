"""HTTP to Segment's batch endpoint: a keep-alive connection pool, gzip, auth, headers.

Requests go through urllib3, the HTTP engine under ``requests``, used directly:
a send is the only thing the sender thread does, and skipping ``requests``'
per-call preparation (cookies, hooks, environment look-ups) halves its CPU cost.
Proxies come from the ``proxies`` option, else from the environment
(``HTTPS_PROXY``, ``NO_PROXY``, ...), read once when the client starts; the
environment's are not used for a host on this machine (a local collector).
With OAuth options, requests carry ``Authorization: Bearer`` (see oauth.py).
"""

from __future__ import annotations

import base64
import gzip
import logging
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import urllib3
from requests.utils import (
    get_auth_from_url,
    get_environ_proxies,
    select_proxy,
    should_bypass_proxies,
)

from segment_core._version import DISTRIBUTION, VERSION
from segment_core.batching import batch_body
from segment_core.config import Config, proxy_url
from segment_core.encoding import now_timestamp
from segment_core.hosts import is_loopback_url, redact_url
from segment_core.oauth import OAuthError, TokenSource
from segment_core.retry import is_retryable_status, parse_retry_after

__all__ = ["USER_AGENT", "Outcome", "Transport"]

USER_AGENT = f"{DISTRIBUTION}/{VERSION} (Python {platform.python_version()})"
#: Connections kept by a client in sync mode, where each caller sends on its own
#: thread: more callers at once open one more each, which the pool then closes
#: (with a warning of urllib3's). Never waited for: a caller is held by nothing
#: but its own request.
SYNC_POOL_SIZE = 32

logger = logging.getLogger("segment.core")


@dataclass(frozen=True)
class Outcome:
    """What one POST came to."""

    status: int | None
    error: str = ""
    retry_after: float | None = None
    #: The answer's text (its first 500 bytes), when there was one.
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        # No status means the request never got an answer: a network error.
        return self.status is None or is_retryable_status(self.status)


class Transport:
    """Sends batch bodies; never raises for network trouble, it reports an :class:`Outcome`."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._url = config.host.rstrip("/") + "/v1/batch"
        self._write_key = config.write_key or ""
        token = base64.b64encode(f"{self._write_key}:".encode()).decode()
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
            "User-Agent": USER_AGENT,
        }
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = urllib3.Timeout(total=config.timeout)
        self._debug = config.debug
        self._shown_url = redact_url(self._url)
        if config.sync_mode:
            self._pool = _pool_for(self._url, config, size=SYNC_POOL_SIZE)
        else:  # one connection per sender thread
            self._pool = _pool_for(self._url, config, size=max(1, config.max_in_flight))
        self._tokens: TokenSource | None = None
        if config.oauth:
            # One token request at a time (TokenSource holds a lock): one connection.
            auth_url = config.oauth_auth_server.rstrip("/") + "/token"
            auth_pool = _pool_for(auth_url, config, size=max(1, config.max_in_flight))
            self._tokens = TokenSource(config, auth_pool)

    def post(self, messages: Sequence[bytes], *, retry_count: int = 0) -> Outcome:
        """POST ``messages`` as one batch."""
        # sentAt is stamped per attempt: Segment uses it to correct clock skew.
        body = batch_body(messages, write_key=self._write_key, sent_at=now_timestamp())
        if self._config.gzip:
            # Level 1: most of the size reduction of JSON for a fraction of the CPU.
            body = gzip.compress(body, compresslevel=1)
        headers = self._headers
        if retry_count:
            headers = {**headers, "X-Retry-Count": str(retry_count)}
        if self._tokens is not None:
            outcome = self._post_with_token(body, headers)
        else:
            outcome = self._send(body, headers)
        if self._debug:
            answer = f"HTTP {outcome.status}" if outcome.status is not None else outcome.error
            logger.debug(
                "sent %d message(s), %d bytes, to %s: %s",
                len(messages),
                len(body),
                self._shown_url,
                answer,
            )
        return outcome

    def _post_with_token(self, body: bytes, headers: dict[str, str]) -> Outcome:
        assert self._tokens is not None
        outcome, token = self._send_with_token(body, headers)
        if outcome.status == 401 and token is not None:
            # Revoked or expired early: one fresh token, one more try.
            self._tokens.invalidate(token)
            outcome, _ = self._send_with_token(body, headers)
        return outcome

    def _send_with_token(self, body: bytes, headers: dict[str, str]) -> tuple[Outcome, str | None]:
        assert self._tokens is not None
        try:
            token = self._tokens.token()
        except OAuthError as error:
            # Retryable trouble reads as a network error; a refusal is final.
            status = None if error.retryable else error.status
            return Outcome(status=status, error=str(error)), None
        bearer = {**headers, "Authorization": f"Bearer {token}"}
        return self._send(body, bearer), token

    def _send(self, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            response = self._pool.request(
                "POST",
                self._url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status < 300:
            return Outcome(status=response.status)
        text = response.data[:500].decode("utf-8", "replace")
        return Outcome(
            status=response.status,
            error=f"HTTP {response.status}: {text}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            body=text,
        )

    def close(self) -> None:
        self._pool.clear()


def _pool_for(url: str, config: Config, *, size: int) -> urllib3.PoolManager:
    """A pool keeping ``size`` connections to ``url``, through the proxy ``config``
    (or the environment) names."""
    if config.proxies:
        proxies = dict(config.proxies)
        if should_bypass_proxies(url, no_proxy=proxies.get("no_proxy")):
            proxies = {}
    elif is_loopback_url(url):  # a collector on this machine: HTTP_PROXY is for the network
        proxies = {}
    else:
        proxies = get_environ_proxies(url)
    proxy = select_proxy(url, proxies)
    if not proxy:
        return urllib3.PoolManager(maxsize=size)
    proxy = proxy_url(proxy)
    username, password = get_auth_from_url(proxy)
    proxy_headers = (
        urllib3.make_headers(proxy_basic_auth=f"{username}:{password}") if username else None
    )
    return urllib3.ProxyManager(proxy, maxsize=size, proxy_headers=proxy_headers)
