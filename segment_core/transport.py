"""HTTP to Segment's batch endpoint: one ``requests.Session``, gzip, auth, headers."""

from __future__ import annotations

import base64
import gzip
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import requests

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
        self._session = requests.Session()
        if config.proxies:
            self._session.proxies.update(config.proxies)

    def post(self, messages: Sequence[bytes], *, retry_count: int = 0) -> Outcome:
        # sentAt is stamped per attempt: Segment uses it to correct clock skew.
        body = batch_body(messages, write_key=self._write_key, sent_at=now_timestamp())
        if self._config.gzip:
            body = gzip.compress(body, compresslevel=6)
        headers = self._headers
        if retry_count:
            headers = {**headers, "X-Retry-Count": str(retry_count)}
        try:
            response = self._session.post(
                self._url, data=body, headers=headers, timeout=self._config.timeout
            )
        except requests.RequestException as exc:
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Outcome(status=response.status_code)
        return Outcome(
            status=response.status_code,
            error=f"HTTP {response.status_code}: {response.text[:500]}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def close(self) -> None:
        self._session.close()
