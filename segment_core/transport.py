"""HTTP to Segment's batch endpoint: a keep-alive connection pool, gzip, auth, headers.

Requests go through urllib3, the HTTP engine under ``requests``, used directly
(http_exchange.py): a send is the only thing the sender thread does, and skipping
``requests``' per-call preparation (cookies, hooks, environment look-ups) halves
its CPU cost. The pool, its proxy and its CA bundle are set when the client starts.
With OAuth options, requests carry ``Authorization: Bearer`` (see oauth.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import logging
import platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import urllib3

from segment_core._version import DISTRIBUTION, VERSION
from segment_core.batching import batch_body
from segment_core.config import Clock, Config
from segment_core.encoding import format_timestamp, now_timestamp
from segment_core.errors import is_interruption
from segment_core.hosts import redact_url
from segment_core.http_exchange import (
    ERROR_TEXT_BYTES,
    SteadyTimeout,
    connection_pool,
    post,
    proxy_credentials,
)
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
#: Answers that say the URL posted to is wrong (a ``host`` with ``/v1`` of its own).
_NO_SUCH_URL = (404, 405)


@dataclass(frozen=True)
class Outcome:
    """What one POST came to."""

    status: int | None
    error: str = ""
    retry_after: float | None = None
    #: The answer's text (its first ``ERROR_TEXT_BYTES``), when there was one; ``error``
    #: shows only a short part of it, with the request's credentials masked.
    body: str = ""
    #: ``status`` is the OAuth token endpoint's refusal: the batch was never sent.
    token_refused: bool = False
    #: A redirect to follow once its ``Retry-After`` has passed: retried, not followed now.
    deferred: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        # No status means the request never got an answer: a network error.
        return self.status is None or self.deferred or is_retryable_status(self.status)

    @property
    def final_for_spool(self) -> bool:
        """Whether a batch given up with this outcome leaves the spool: only when the batch
        endpoint itself refused it for good (a 4xx not retried). A redirect not followed,
        or a token endpoint's refusal, says nothing of the batch: it stays on disk."""
        status = self.status
        return (
            status is not None
            and 400 <= status < 500
            and not self.token_refused
            and not is_retryable_status(status)
        )


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
        self._timeout = SteadyTimeout(total=config.timeout)
        self._sent_at = now_timestamp if config.now is None else _stamped_by(config.now)
        self._debug = config.debug
        self._shown_url = redact_url(self._url)
        if config.sync_mode:
            self._pool = connection_pool(self._url, config, size=SYNC_POOL_SIZE)
        else:  # one connection per sender thread
            self._pool = connection_pool(self._url, config, size=max(1, config.max_in_flight))
        self._tokens: TokenSource | None = None
        if config.oauth:
            # One token request at a time (TokenSource holds a lock): one connection.
            auth_url = config.oauth_auth_server.rstrip("/") + "/token"
            auth_pool = connection_pool(auth_url, config, size=max(1, config.max_in_flight))
            self._tokens = TokenSource(config, auth_pool)

    def post(self, messages: Sequence[bytes], *, retry_count: int = 0) -> Outcome:
        """POST ``messages`` as one batch."""
        headers = self._headers
        if retry_count:
            headers = {**headers, "X-Retry-Count": str(retry_count)}
        if self._tokens is not None:
            outcome, body = self._post_with_token(messages, headers)
        else:
            body = self._body(messages)
            outcome = self._send(body, headers)
        if self._debug:
            if outcome.status is not None:
                said, answer = "sent", f"HTTP {outcome.status}"
            else:  # no answer: perhaps never sent
                said, answer = "could not send", outcome.error
            logger.debug(
                "%s %d message(s), %d bytes, to %s: %s",
                said,
                len(messages),
                len(body),
                self._shown_url,
                answer,
            )
        return outcome

    def _body(self, messages: Sequence[bytes]) -> bytes:
        """The batch as it leaves now. sentAt is stamped per request, just before it is
        sent: Segment moves every timestamp by ``receivedAt - sentAt`` to correct clock
        skew, so time spent before the send (a token request) would move them too."""
        body = batch_body(messages, write_key=self._write_key, sent_at=self._sent_at())
        if self._config.gzip:
            # Level 1: most of the size reduction of JSON for a fraction of the CPU.
            body = gzip.compress(body, compresslevel=1)
        return body

    def _post_with_token(
        self, messages: Sequence[bytes], headers: dict[str, str]
    ) -> tuple[Outcome, bytes]:
        """The outcome, and the body last sent (empty when no token came)."""
        assert self._tokens is not None
        outcome, token, body = self._send_with_token(messages, headers)
        if outcome.status == 401 and token is not None:
            # Revoked or expired early: one fresh token, one more try, stamped anew.
            self._tokens.invalidate(token)
            outcome, _, body = self._send_with_token(messages, headers)
        return outcome, body

    def _send_with_token(
        self, messages: Sequence[bytes], headers: dict[str, str]
    ) -> tuple[Outcome, str | None, bytes]:
        assert self._tokens is not None
        try:
            token = self._tokens.token()
        except OAuthError as error:
            # Retryable trouble reads as a network error; a refusal is final.
            status = None if error.retryable else error.status
            return Outcome(status=status, error=str(error), token_refused=True), None, b""
        bearer = {**headers, "Authorization": f"Bearer {token}"}
        body = self._body(messages)
        return self._send(body, bearer), token, body

    def _send(self, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            answer = post(
                self._pool,
                self._url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                body_limit=ERROR_TEXT_BYTES,
            )
        except urllib3.exceptions.HTTPError as exc:
            error = self._network_error(exc)
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError) and _while_answered(exc):
                # Sent, not answered in time: the server may have taken it (a retry
                # sends the same messageIds, which Segment takes once).
                error += " (the batch was sent and may have arrived)"
            return Outcome(status=None, error=error)
        if 200 <= answer.status < 300:
            return Outcome(status=answer.status)
        text = answer.body.decode("utf-8", "replace")
        status = f"HTTP {answer.status}"
        if answer.status in _NO_SUCH_URL:  # the URL is at fault: say which it was
            status += f" from {self._shown_url}"
        # The answer may echo the request (a proxy, a debug server): what the logs and
        # last_error show of it is short, without the credentials it carried.
        credentials = (
            self._write_key,
            headers.get("Authorization", "").partition(" ")[2],
            *proxy_credentials(self._pool),
        )
        return Outcome(
            status=answer.status,
            error=f"{status}: {answer.shown(credentials, text)}",
            retry_after=parse_retry_after(answer.headers.get("Retry-After")),
            body=text,
            deferred=answer.deferred,
        )

    def _network_error(self, exc: Exception) -> str:
        """``exc`` as text that names where it was sent (urllib3 1.26 writes a
        connection as ``<...HTTPConnection object at 0x...>``)."""
        shown = self._shown_url  # as it is: a backslash in it is no escape
        return _CONNECTION_OBJECT.sub(lambda match: shown, f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._pool.clear()
        if self._tokens is not None:
            self._tokens.close()


def _while_answered(exc: Exception) -> bool:
    """Whether the socket timeout behind urllib3's ``ReadTimeoutError`` came as the
    answer was read (the request had gone), not in a TLS handshake (it had not)."""
    timeout = exc.__context__
    trace = timeout.__traceback__ if timeout is not None else None
    while trace is not None:
        if trace.tb_frame.f_code.co_name == "getresponse":
            return True
        trace = trace.tb_next
    return False


_CONNECTION_OBJECT = re.compile(r"<urllib3\.connection\.\w+ object at 0x[0-9a-fA-F]+>")


def _stamped_by(now: Clock) -> Callable[[], str]:
    """sentAt from the ``now`` option, the clock of the messages' timestamps.

    Segment moves each timestamp by ``receivedAt - sentAt``: a sentAt from another
    clock would move every event by the difference. A hook that fails gives the
    system clock's time, as for timestamps (where it is logged).
    """

    def sent_at() -> str:
        try:
            value = now()
            if isinstance(value, dt.datetime) and value.utcoffset() is not None:
                return format_timestamp(value)
        except Exception as error:
            if is_interruption(error):  # sync mode: a job's time limit stops the job
                raise
        return now_timestamp()

    return sent_at
