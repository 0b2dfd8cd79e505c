"""The collector's OAuth: `POST /token` verifies RS256 client assertions; `/v1/*` wants Bearer."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from segment_core.collector import CollectorHandle, run_in_background
from segment_core.collector._asgi import DRAIN_LIMIT
from segment_core.collector.oauth import OAuthServer
from tests.collector.helpers import batch

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return _private_key()


@pytest.fixture
def collector(key: rsa.RSAPrivateKey) -> Iterator[CollectorHandle]:
    with run_in_background(oauth=OAuthServer(_public_pem(key), token_lifetime=600)) as handle:
        yield handle


def assertion(key: Any, audience: str, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "client-1",
        "sub": "client-1",
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    headers = changes.pop("headers", {"kid": "key-1"})
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def ask_token(url: str, signed: str, **form: str) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        "scope": "tracking_api:write",
        **form,
    }
    return requests.post(f"{url}/token", data=data, timeout=10)


def test_a_valid_assertion_gets_a_token_that_opens_the_batch_endpoint(
    collector: CollectorHandle, key: rsa.RSAPrivateKey
) -> None:
    response = ask_token(collector.url, assertion(key, collector.url))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == "tracking_api:write"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    posted = requests.post(f"{collector.url}/v1/batch", json=batch(), headers=headers, timeout=10)
    assert posted.status_code == 200, posted.text
    assert collector.summary()["oauth"]["issued"] == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic d3JpdGUta2V5Og==", "Bearer", "Bearer not-a-token-it-issued"],
)
def test_batches_without_a_live_token_get_401(
    collector: CollectorHandle, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(f"{collector.url}/v1/batch", json=batch(), headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert collector.events() == []


def test_a_revoked_token_no_longer_opens_the_endpoint(
    collector: CollectorHandle, key: rsa.RSAPrivateKey
) -> None:
    token = ask_token(collector.url, assertion(key, collector.url)).json()["access_token"]
    requests.delete(f"{collector.url}/collector/oauth", timeout=10).raise_for_status()
    response = requests.post(
        f"{collector.url}/v1/batch",
        json=batch(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 401


def _other_algorithm_assertion(audience: str) -> str:
    signer = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(
        {"iss": "c", "sub": "c", "aud": audience, "iat": int(time.time()),
         "exp": int(time.time()) + 60, "jti": "x"},
        signer, algorithm="ES256", headers={"kid": "k"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("make", "status", "error", "description"),
    [
        (lambda k, a: assertion(k, a, exp=int(time.time()) - 120), 400, "invalid_request",
         "Token is expired"),
        (lambda k, a: assertion(k, a, iat=int(time.time()) + 600), 400, "invalid_request",
         "Token used before issued"),
        (lambda k, a: assertion(k, "https://oauth2.segment.io"), 400, "invalid_grant", "aud"),
        (lambda k, a: assertion(_private_key(), a), 401, "invalid_client", "signature"),
        (lambda k, a: assertion(k, a, sub="someone-else"), 401, "invalid_client", "iss and sub"),
        (lambda k, a: assertion(k, a, jti=None), 400, "invalid_request", "jti"),
        (lambda k, a: assertion(k, a, headers={}), 400, "invalid_request", "kid"),
        (lambda k, a: _other_algorithm_assertion(a), 400, "invalid_request", "not valid"),
        (lambda k, a: "not.a.jwt", 400, "invalid_request", "not a JWT"),
    ],
)  # fmt: skip
def test_a_bad_assertion_is_refused_with_an_oauth_error(
    collector: CollectorHandle,
    key: rsa.RSAPrivateKey,
    make: Any,
    status: int,
    error: str,
    description: str,
) -> None:
    response = ask_token(collector.url, make(key, collector.url))
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert description in body["error_description"]
    counts = collector.summary()["oauth"]
    assert (counts["issued"], counts["refused"]) == (0, 1)


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_assertion_type": "urn:other"}, "invalid_request"),
        ({"client_assertion": ""}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
    ],
)
def test_a_bad_form_is_refused(
    collector: CollectorHandle, key: rsa.RSAPrivateKey, form: dict[str, str], error: str
) -> None:
    response = ask_token(collector.url, assertion(key, collector.url), **form)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_an_assertion_is_good_once(collector: CollectorHandle, key: rsa.RSAPrivateKey) -> None:
    signed = assertion(key, collector.url)
    assert ask_token(collector.url, signed).status_code == 200
    replay = ask_token(collector.url, signed)
    assert replay.status_code == 400 and "already used" in replay.json()["error_description"]


def test_the_token_endpoint_wants_a_form(collector: CollectorHandle) -> None:
    response = requests.post(f"{collector.url}/token", json={"grant_type": "x"}, timeout=10)
    assert response.status_code == 415


def test_a_huge_form_is_answered_before_it_is_all_sent(collector: CollectorHandle) -> None:
    # Any web page can post a form of any size here; the collector keeps its first
    # bytes, reads a bounded amount more so that the client sees the answer, and
    # answers without waiting for the rest.
    host, port = collector.url.removeprefix("http://").rsplit(":", 1)
    chunk = b"a" * (1 << 20)
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    whole_body = 4 * DRAIN_LIMIT
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /token HTTP/1.1\r\nHost: %s:%s\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            % (host.encode(), port.encode())
        )
        try:
            while sent < whole_body and not select.select([conn], [], [], 0)[0]:
                conn.sendall(framed)
                sent += len(chunk)
            conn.sendall(b"0\r\n\r\n")
        except OSError:  # the collector answered and closed: what it sent is read below
            pass
        answer = _whole_answer(conn)
    assert sent < whole_body
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"the request body is over 16384 bytes" in answer


def _whole_answer(conn: socket.socket) -> bytes:
    """The answer's head and its Content-Length's worth of body, however it arrives."""
    answer = b""
    while True:
        try:
            part = conn.recv(65536)
        except OSError:
            return answer
        if not part:
            return answer
        answer += part
        head, ended, body = answer.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:] if ended else ():
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and len(body) >= int(value):
                return answer


def test_an_unusable_public_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PEM public key"):
        OAuthServer(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = ec_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="must be an RSA key"):
        OAuthServer(pem)


@pytest.mark.parametrize("lifetime", [float("nan"), float("inf"), -5.0, 0.0])
def test_a_token_lifetime_must_be_a_positive_number(
    key: rsa.RSAPrivateKey, lifetime: float
) -> None:
    with pytest.raises(ValueError, match="token_lifetime must be a number of seconds"):
        OAuthServer(_public_pem(key), token_lifetime=lifetime)


def test_a_long_token_lifetime_is_answered(key: rsa.RSAPrivateKey) -> None:
    oauth = OAuthServer(_public_pem(key), token_lifetime=1e30)
    with run_in_background(oauth=oauth) as handle:
        answer = ask_token(handle.url, assertion(key, handle.url))
        assert answer.status_code == 200, answer.text
        assert answer.json()["expires_in"] == 1e30


@pytest.mark.slow
@pytest.mark.parametrize("lifetime", ["nan", "inf", "-5", "0", "soon"])
def test_the_command_line_names_a_bad_token_lifetime(tmp_path: Path, lifetime: str) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(_public_pem(_private_key()))
    result = subprocess.run(
        [sys.executable, "-m", "segment_core.collector", "--port", "0",
         "--oauth-public-key", str(public), "--oauth-token-lifetime", lifetime],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "argument --oauth-token-lifetime: " in result.stderr
    assert "--oauth-public-key" not in result.stderr.splitlines()[-1]


@pytest.mark.slow
def test_the_command_line_names_a_bad_key_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    result = subprocess.run(
        [sys.executable, "-m", "segment_core.collector", "--port", "0",
         "--oauth-public-key", str(missing)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"--oauth-public-key {missing}" in result.stderr


@pytest.mark.slow
def test_the_command_line_serves_oauth(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    from segment_core import Client
    from tests.collector.test_cli import collector_process

    public = tmp_path / "public.pem"
    public.write_bytes(_public_pem(key))
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with collector_process(
        tmp_path, "--oauth-public-key", str(public), "--oauth-token-lifetime", "120"
    ) as collector:
        client = Client(
            "write-key",
            host=collector.url,
            sync_mode=True,
            oauth_client_id="client-1",
            oauth_client_key=private,
            oauth_key_id="key-1",
            oauth_auth_server=collector.url,
        )
        assert client.track("u1", "Signed Up")[0]
        [event] = collector.wait_for(1)
        assert event["status"] == "good"
        assert client.stats()["sent"] == 1
        oauth = collector.summary()["oauth"]
        assert (oauth["issued"], oauth["rejected_requests"]) == (1, 0)
