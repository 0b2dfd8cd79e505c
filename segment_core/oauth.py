"""OAuth for Segment's Tracking API: a signed client assertion exchanged for an access token.

The flow analytics-python 2.3+ implements (extra ``oauth``: PyJWT and cryptography):

1. sign a short-lived JWT (RS256, header ``kid`` = ``oauth_key_id``, ``iss`` = ``sub``
   = ``oauth_client_id``, ``aud`` = ``oauth_auth_server``) with ``oauth_client_key``;
2. ``POST {oauth_auth_server}/token`` with ``grant_type=client_credentials`` and the
   assertion as ``client_assertion``; the answer holds ``access_token`` and
   ``expires_in``;
3. send batches with ``Authorization: Bearer <access_token>``.

A token is renewed when half of its lifetime has passed, so it is never used close to
its expiry; a batch answered 401 renews it once and is sent again.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import urllib3

from segment_core._clock import monotonic
from segment_core.config import Config
from segment_core.http_exchange import SteadyTimeout, post, proxy_credentials
from segment_core.retry import parse_http_date

__all__ = ["OAuthError", "TokenSource", "load_private_key"]

ASSERTION_LIFETIME_SECONDS = 60
#: Used when the server gives no ``expires_in``.
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600.0
#: Of the token answer, what is read: a token answer is a few kilobytes.
TOKEN_ANSWER_BYTES = 64 * 1024
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class OAuthError(Exception):
    """The authorization server refused or could not be reached.

    ``status`` is the HTTP status of the token request (None for a network error);
    ``retryable`` says whether asking again later may succeed.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def load_private_key(pem: str | bytes) -> Any:
    """Parse ``oauth_client_key``; a ValueError names the option when it is not usable
    (nor the libraries that sign with it installed)."""
    return _parsed_key(pem.encode() if isinstance(pem, str) else pem)


# Checked as the options are validated, then used as the client is built: an RSA key
# takes tens of milliseconds to load, every time.
@functools.lru_cache(maxsize=4)
def _parsed_key(data: bytes) -> Any:
    try:
        import jwt  # noqa: F401  # signs the assertions: checked with the key
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        raise ValueError(
            "oauth_client_key: OAuth needs the 'oauth' extra: pip install 'segment-web[oauth]'"
        ) from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"oauth_client_key is not a PEM private key: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("oauth_client_key must be an RSA private key (RS256)")
    return key


class TokenSource:
    """Gives a valid access token, asking the authorization server when needed.

    Thread-safe: concurrent senders share one token and one renewal.
    """

    def __init__(
        self,
        config: Config,
        pool: urllib3.PoolManager,
        *,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        assert config.oauth_client_id and config.oauth_key_id and config.oauth_client_key
        self._key = load_private_key(config.oauth_client_key)  # PyJWT is there once it loads
        import jwt

        self._jwt = jwt
        self._client_id = config.oauth_client_id
        self._key_id = config.oauth_key_id
        self._audience = config.oauth_auth_server.rstrip("/")
        self._url = self._audience + "/token"
        self._scope = config.oauth_scope
        self._timeout = SteadyTimeout(total=config.timeout)
        self._pool = pool
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        #: Seconds the authorization server's clock is ahead of ours (its Date header).
        self._skew = 0.0

    def token(self) -> str:
        """A token with at least half of its lifetime left; raises :class:`OAuthError`."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime = self._request()
                self._renew_at = self._clock() + lifetime / 2
            return self._token

    def close(self) -> None:
        """Close the connections to the authorization server."""
        self._pool.clear()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (refused by the API) so the next :meth:`token` asks anew."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _assertion(self) -> str:
        issued = int(time.time() + self._skew)
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self._audience,
            "iat": issued - 5,  # a little slack for the server's clock
            "exp": issued + ASSERTION_LIFETIME_SECONDS - 5,
            "jti": str(uuid.uuid4()),
        }
        encoded: str = self._jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self._key_id}
        )
        return encoded

    def _request(self) -> tuple[str, float]:
        skew = self._skew
        try:
            return self._ask()
        except OAuthError as error:
            # Refused, with a Date that shows our clock off: the assertion was dated
            # outside what the server accepts ("used before issued", "expired"). One
            # more, dated by the server's clock, rather than losing the batch.
            refused = error.status is not None and 400 <= error.status < 500
            if refused and error.status not in (408, 429) and abs(self._skew - skew) > 2:
                return self._ask()
            raise

    def _ask(self) -> tuple[str, float]:
        assertion = self._assertion()
        body = urlencode(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": _ASSERTION_TYPE,
                "client_assertion": assertion,
                "scope": self._scope,
            }
        )
        try:
            answer = post(
                self._pool,
                self._url,
                body=body.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self._timeout,
                body_limit=TOKEN_ANSWER_BYTES,
            )
        except urllib3.exceptions.HTTPError as error:
            raise OAuthError(
                f"OAuth token request to {self._url} failed: {type(error).__name__}: {error}",
                retryable=True,
            ) from None
        self._note_server_time(answer.headers.get("Date"))
        if answer.status != 200:
            # The answer may echo the request, the signed assertion with it.
            # (A proxy's answer may echo the proxy's own credentials.)
            text = answer.shown([assertion, *proxy_credentials(self._pool)])
            # 4xx other than a rate limit is a configuration problem: retrying will not help.
            retryable = answer.status in (408, 429) or answer.status >= 500
            raise OAuthError(
                f"OAuth token request refused: HTTP {answer.status}: {text}",
                status=answer.status,
                retryable=retryable,
            )
        try:
            payload = json.loads(answer.body)
            token = payload["access_token"]
            if not isinstance(token, str) or not token:
                raise TypeError("access_token is not a non-empty string")
        except (ValueError, KeyError, TypeError) as error:
            raise OAuthError(
                f"OAuth token response has no access_token: {error}", retryable=True
            ) from None
        lifetime = payload.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
        return token, float(lifetime)

    def _note_server_time(self, date: str | None) -> None:
        server_time = parse_http_date(date) if date else None
        if server_time is None:
            return
        # The Date header has whole seconds; only a real difference is worth correcting.
        skew = server_time - time.time()
        self._skew = skew if abs(skew) > 2 else 0.0
