"""OAuth for the collector: a token endpoint and Bearer validation, as Segment's Tracking API.

Given the public key of a client's key pair (``--oauth-public-key FILE``), the
collector:

* answers ``POST /token`` (form-encoded ``grant_type=client_credentials``,
  ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``,
  ``client_assertion=<JWT>``, ``scope``) by verifying the RS256 assertion (signature,
  ``aud`` = the collector's URL, ``exp``/``iat``, ``iss`` = ``sub``, a ``kid`` header,
  a ``jti`` never seen before) and issuing an opaque access token;
* accepts ``/v1/*`` requests only with ``Authorization: Bearer <a live token>``;
* reports counts at ``GET /collector/oauth`` and forgets every token on
  ``DELETE /collector/oauth`` (to test a client's refresh-and-retry on a 401).

Errors follow RFC 6749: ``{"error": ..., "error_description": ...}``; an expired
assertion is ``invalid_request`` / ``Token is expired``, as Segment answers it.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from segment_core.collector import with_extra_hint

try:  # imported by name in a client's tests: the extra's hint, as for the others
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
except ModuleNotFoundError as error:
    raise with_extra_hint(error) from None

from segment_core.collector._asgi import read_body
from segment_core.collector.ingest import RequestError

__all__ = ["OAuthServer"]

SCOPE = "tracking_api:write"
_GRANT_TYPE = "client_credentials"
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MAX_FORM_BYTES = 16 * 1024
#: Remembered assertion ids (replay protection), bounded.
_MAX_SEEN_ASSERTIONS = 100_000


class _Refusal(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class OAuthServer:
    """Issues and checks access tokens for clients holding the key pair's private key."""

    def __init__(
        self,
        public_key: str | bytes,
        *,
        token_lifetime: float = 3600.0,
        audience: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            import jwt
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
        except ImportError:
            raise ValueError(
                "OAuth needs the 'oauth' extra: pip install 'segment-web[oauth]'"
            ) from None
        data = public_key.encode() if isinstance(public_key, str) else public_key
        try:
            key = load_pem_public_key(data)
        except ValueError as error:
            raise ValueError(f"the OAuth public key is not a PEM public key: {error}") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the OAuth public key must be an RSA key (RS256)")
        if not math.isfinite(token_lifetime) or token_lifetime <= 0:
            raise ValueError(
                f"token_lifetime must be a number of seconds greater than 0, got {token_lifetime}"
            )
        self._jwt = jwt
        self._key = key
        self._lifetime = float(token_lifetime)
        # Whole seconds as an integer, as Segment answers; JSON integers stop at 64 bits.
        whole = self._lifetime.is_integer() and self._lifetime < 2**63
        self._expires_in: int | float = int(self._lifetime) if whole else self._lifetime
        self._audience = audience.rstrip("/") if audience else None
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> expiry (clock seconds)
        self._seen: dict[str, float] = {}  # assertion jti -> its exp
        self.counts: Counter[str] = Counter()

    def routes(self) -> list[Route]:
        """``POST /token`` and ``GET|DELETE /collector/oauth``."""
        return [
            Route("/token", self._token_endpoint, methods=["POST"]),
            Route("/collector/oauth", self._admin, methods=["GET", "DELETE"]),
        ]

    def check_bearer(self, authorization: str | None) -> None:
        """Raise a 401 :class:`RequestError` unless ``authorization`` holds a live token."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._count("rejected_requests")
            raise RequestError(
                401, "unauthorized", "an OAuth access token is required (Authorization: Bearer)"
            )
        with self._lock:
            expires = self._tokens.get(token.strip())
        if expires is None or expires <= self._clock():
            self._count("rejected_requests")
            raise RequestError(401, "unauthorized", "the access token is unknown or expired")

    def summary(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            live = sum(1 for expires in self._tokens.values() if expires > now)
            return {**{"issued": 0, "refused": 0, "rejected_requests": 0}, **self.counts,
                    "live_tokens": live}  # fmt: skip

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    # -- endpoints ---------------------------------------------------------------

    async def _token_endpoint(self, request: Request) -> Response:
        try:
            form = await _read_form(request)
            scope = self._verify(form, _audience_of(request, self._audience))
        except _Refusal as refusal:
            self._count("refused")
            return _json(
                {"error": refusal.error, "error_description": refusal.description},
                status=refusal.status,
            )
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + self._lifetime
            self.counts["issued"] += 1
        return _json(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self._expires_in,
                "scope": scope,
            }
        )

    async def _admin(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.revoke_all()
        return _json(self.summary())

    # -- verification ------------------------------------------------------------

    def _verify(self, form: dict[str, str], audience: str) -> str:
        if form.get("grant_type") != _GRANT_TYPE:
            raise _Refusal(400, "unsupported_grant_type", f"grant_type must be {_GRANT_TYPE}")
        if form.get("client_assertion_type") != _ASSERTION_TYPE:
            raise _Refusal(
                400, "invalid_request", f"client_assertion_type must be {_ASSERTION_TYPE}"
            )
        assertion = form.get("client_assertion")
        if not assertion:
            raise _Refusal(400, "invalid_request", "client_assertion is required")
        scopes = form.get("scope", "").split()
        if SCOPE not in scopes:
            raise _Refusal(400, "invalid_scope", f"scope must include {SCOPE}")
        claims = self._decode(assertion, audience)
        if claims["iss"] != claims["sub"]:
            raise _Refusal(401, "invalid_client", "the assertion's iss and sub differ")
        jti = claims["jti"]
        with self._lock:
            now = self._clock()
            if jti in self._seen:
                raise _Refusal(400, "invalid_grant", "the assertion was already used")
            if len(self._seen) >= _MAX_SEEN_ASSERTIONS:
                self._seen = {j: e for j, e in self._seen.items() if e > now}
            self._seen[jti] = float(claims["exp"])
        return " ".join(scopes)

    def _decode(self, assertion: str, audience: str) -> dict[str, Any]:
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise _Refusal(
                400, "invalid_request", f"client_assertion is not a JWT: {error}"
            ) from None
        if not header.get("kid"):
            raise _Refusal(400, "invalid_request", "the assertion has no kid header")
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                self._key,
                algorithms=["RS256"],
                audience=audience,
                leeway=5,
                options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise _Refusal(400, "invalid_request", "Token is expired") from None
        except jwt.ImmatureSignatureError:
            raise _Refusal(400, "invalid_request", "Token used before issued") from None
        except jwt.InvalidAudienceError:
            raise _Refusal(
                400, "invalid_grant", f"the assertion's aud must be {audience}"
            ) from None
        except jwt.InvalidSignatureError:
            raise _Refusal(
                401, "invalid_client", "the assertion's signature is not valid"
            ) from None
        except jwt.PyJWTError as error:
            raise _Refusal(400, "invalid_request", f"the assertion is not valid: {error}") from None
        if int(claims["iat"]) > self._clock() + 5:
            raise _Refusal(400, "invalid_request", "Token used before issued")
        return claims

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1


async def _read_form(request: Request) -> dict[str, str]:
    # Only the form's first bytes are kept: any web page can post a form here,
    # of any size, without a preflight.
    body = await read_body(request.receive, _MAX_FORM_BYTES)
    if body is None:
        raise _Refusal(400, "invalid_request", "the client went away before its form came")
    if len(body) > _MAX_FORM_BYTES:
        raise _Refusal(400, "invalid_request", f"the request body is over {_MAX_FORM_BYTES} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _Refusal(415, "invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(body.decode("utf-8"), strict_parsing=bool(body), max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as error:
        raise _Refusal(400, "invalid_request", f"the form is not valid: {error}") from None
    return {name: values[0] for name, values in parsed.items()}


def _audience_of(request: Request, configured: str | None) -> str:
    return configured or str(request.base_url).rstrip("/")


def _json(payload: dict[str, Any], *, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
