"""HTTP to Segment's batch endpoint: a keep-alive connection pool, gzip, auth, headers.

Requests go through urllib3, the HTTP engine under ``requests``, used directly:
a send is the only thing the sender thread does, and skipping ``requests``'
per-call preparation (cookies, hooks, environment look-ups) halves its CPU cost.
Proxies come from the ``proxies`` option, else from the environment
(``HTTPS_PROXY``, ``NO_PROXY``, ...), read once when the client starts.
"""

from __future__ import annotations

import base64
import gzip
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import urllib3
from requests.utils import get_environ_proxies, select_proxy

from segment_core._version import DISTRIBUTION, VERSION
from segment_core.batching import batch_body
from segment_core.config import Config
from segment_core.encoding import now_timestamp
from segment_core.retry import is_retryable_status, parse_retry_after

__all__ = ["USER_AGENT", "Outcome", "Transport"]

USER_AGENT = f"{DISTRIBUTION}/{VERSION} (Python {platform.python_version()})"


@dataclass(frozen=True)
class Outcome:
    """What one POST came to."""

    status: int | None
    error: str = ""
    retry_after: float | None = None

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
        proxies = dict(config.proxies) if config.proxies else get_environ_proxies(self._url)
        proxy = select_proxy(self._url, proxies)
        pool_size = max(1, config.max_in_flight)
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, maxsize=pool_size)
            if proxy
            else urllib3.PoolManager(maxsize=pool_size)
        )

    def post(self, messages: Sequence[bytes], *, retry_count: int = 0) -> Outcome:
        # sentAt is stamped per attempt: Segment uses it to correct clock skew.
        body = batch_body(messages, write_key=self._write_key, sent_at=now_timestamp())
        if self._config.gzip:
            # Level 1: most of the size reduction of JSON for a fraction of the CPU.
            body = gzip.compress(body, compresslevel=1)
        headers = self._headers
        if retry_count:
            headers = {**headers, "X-Retry-Count": str(retry_count)}
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
        )

    def close(self) -> None:
        self._pool.clear()
