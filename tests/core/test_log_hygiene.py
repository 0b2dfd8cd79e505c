"""What logs, ``last_error`` and refused options show of a server's answer or a host:
short, and without the credentials or the events a request carried, even when the
server echoes the request back (some proxies, gateways and debug servers do)."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import pytest

from segment_core import Client
from segment_core.hosts import ANSWER_SHOWN_CHARS, shown_answer
from tests.core.loopback import Loopback, Seen, reply, start

WRITE_KEY = "wk_SuperSecretWriteKey_12345"
BASIC_TOKEN = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
EMAIL = "alice.secret@example.com"
FAST = {"retry_backoff_min": 0.01, "retry_backoff_max": 0.02}


@pytest.fixture
def servers() -> Iterator[list[Loopback]]:
    """Servers the test starts (append them), stopped after it."""
    started: list[Loopback] = []
    yield started
    for server in started:
        server.stop()


def echoing(status: int) -> Any:
    """An answer with ``status`` that echoes the request: its Authorization and its body."""

    def answer(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        body = seen.body
        if seen.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        auth = seen.headers.get("authorization", "").encode()
        reply(handler, status, b"bad request: auth=" + auth + b" body=" + body)

    return answer


def segment_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("segment")]


def shown_answer_of(last_error: str) -> str:
    """The part of ``last_error`` that comes from the answer: after ``HTTP nnn: ``."""
    return last_error.partition(": ")[2]


@pytest.mark.parametrize("status", [400, 500])
def test_an_answer_echoing_the_request_is_logged_short_without_the_key_or_the_events(
    status: int,
    servers: list[Loopback],
    clients: list[Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment")
    server = start(echoing(status))
    servers.append(server)
    errors: list[Exception] = []
    client = Client(
        WRITE_KEY,
        host=server.url,
        debug=True,  # the retry's DEBUG line too
        max_retries=1,
        on_error=lambda error, messages: errors.append(error),
        **FAST,
    )
    clients.append(client)
    client.identify("u1", {"email": EMAIL})
    assert client.flush(30)
    lines = segment_lines(caplog)
    last_error = client.stats()["last_error"]
    assert isinstance(last_error, str)
    for text in [*lines, last_error]:
        for secret in (WRITE_KEY, BASIC_TOKEN, EMAIL):
            assert secret not in text, text
    said = f"HTTP {status}: bad request: auth=Basic "
    assert [line for line in lines if "cannot deliver" in line and said in line]
    assert [line for line in lines if "giving up" in line and said in line]
    assert last_error.startswith(said)
    assert len(shown_answer_of(last_error)) <= ANSWER_SHOWN_CHARS
    # The on_error hook still gets the answer as it came.
    [error] = errors
    assert EMAIL in getattr(error, "body", "")
    assert BASIC_TOKEN in getattr(error, "body", "")


@pytest.mark.parametrize("oauth", [False, True], ids=["batch", "token request"])
def test_a_proxy_s_answer_echoing_its_credentials_is_shown_without_them(
    servers: list[Loopback],
    clients: list[Client],
    caplog: pytest.LogCaptureFixture,
    oauth_key: str,
    oauth: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment")
    password = "Proxy-Pass_98765"
    token = base64.b64encode(f"proxyuser:{password}".encode()).decode()

    def refusing(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        echoed = seen.headers.get("proxy-authorization", "")
        reply(handler, 407, f"denied {echoed} for proxyuser:{password}".encode())

    proxy = start(refusing)
    servers.append(proxy)
    address = proxy.url.removeprefix("http://")
    oauth_options = {
        "oauth_client_id": "client-1",
        "oauth_client_key": oauth_key,
        "oauth_key_id": "key-1",
        "oauth_auth_server": "http://auth.invalid",
    }
    client = Client(
        WRITE_KEY,
        host="http://segment.invalid",
        proxies={"http": f"http://proxyuser:{password}@{address}"},
        max_retries=0,
        **(oauth_options if oauth else {}),
        **FAST,
    )
    clients.append(client)
    client.track("u1", "Signed Up")
    assert client.flush(30)
    [seen] = proxy.seen
    assert seen.headers["proxy-authorization"] == f"Basic {token}"  # it was sent
    last_error = client.stats()["last_error"]
    said = (
        "OAuth token request refused: HTTP 407: denied Basic "
        if oauth
        else "HTTP 407: denied Basic "
    )
    assert isinstance(last_error, str) and last_error.startswith(said), last_error
    for text in [*segment_lines(caplog), last_error]:
        assert token not in text and password not in text, text


def test_a_json_answer_shows_its_message_short_with_the_write_key_masked(
    servers: list[Loopback], clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment")
    # Longer than what is shown, shorter than what is read of an answer.
    message = f"unknown write key {WRITE_KEY}: " + "see the docs " * 15
    answer = json.dumps({"code": "invalid_key", "message": message}).encode()
    server = start(lambda handler, seen: reply(handler, 401, answer))
    servers.append(server)
    client = Client(WRITE_KEY, host=server.url, max_retries=0, **FAST)
    clients.append(client)
    client.track("u1", "Signed Up")
    assert client.flush(30)
    last_error = client.stats()["last_error"]
    assert isinstance(last_error, str)
    assert last_error.startswith(f"HTTP 401: unknown write key {WRITE_KEY[:4]}")
    assert len(shown_answer_of(last_error)) <= ANSWER_SHOWN_CHARS
    for text in [*segment_lines(caplog), last_error]:
        assert WRITE_KEY not in text, text
        assert '"code"' not in text  # the message alone, not the JSON around it


@pytest.fixture
def oauth_key() -> str:
    """An RSA private key, PEM, for the client's OAuth options."""
    pytest.importorskip("jwt")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def oauth_client(server: Loopback, oauth_key: str) -> Client:
    """A client in sync mode whose API and authorization server are both ``server``."""
    return Client(
        WRITE_KEY,
        host=server.url,
        sync_mode=True,
        oauth_client_id="client-1",
        oauth_client_key=oauth_key,
        oauth_key_id="key-1",
        oauth_auth_server=server.url,
    )


def test_a_token_refusal_echoing_the_request_does_not_show_the_signed_assertion(
    servers: list[Loopback],
    clients: list[Client],
    caplog: pytest.LogCaptureFixture,
    oauth_key: str,
) -> None:
    def authorization_server(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        [assertion] = parse_qs(seen.body.decode())["client_assertion"]
        reply(handler, 400, f"invalid_client: got {assertion}".encode())

    caplog.set_level(logging.DEBUG, logger="segment")
    server = start(authorization_server)
    servers.append(server)
    client = oauth_client(server, oauth_key)
    clients.append(client)
    assert not client.track("u1", "Refused")[0]
    [asked] = server.seen
    [assertion] = parse_qs(asked.body.decode())["client_assertion"]
    last_error = client.stats()["last_error"]
    assert isinstance(last_error, str)
    assert last_error.startswith("OAuth token request refused: HTTP 400: invalid_client: got ")
    lines = segment_lines(caplog)
    assert [line for line in lines if "invalid_client" in line]
    for text in [*lines, last_error]:
        assert assertion[:20] not in text, text


def test_an_answer_echoing_the_request_does_not_show_the_access_token(
    servers: list[Loopback],
    clients: list[Client],
    caplog: pytest.LogCaptureFixture,
    oauth_key: str,
) -> None:
    token = "at_SuperSecretAccessToken_67890"

    def authorization_server_and_api(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/token":
            granted = json.dumps({"access_token": token, "expires_in": 3600}).encode()
            reply(handler, 200, granted, [("Content-Type", "application/json")])
        else:
            echoing(400)(handler, seen)

    caplog.set_level(logging.DEBUG, logger="segment")
    server = start(authorization_server_and_api)
    servers.append(server)
    client = oauth_client(server, oauth_key)
    clients.append(client)
    assert not client.track("u1", "Refused")[0]
    last_error = client.stats()["last_error"]
    assert isinstance(last_error, str)
    assert last_error.startswith("HTTP 400: bad request: auth=Bearer ")
    for text in [*segment_lines(caplog), last_error]:
        assert token not in text, text


@pytest.mark.parametrize(
    "host",
    [
        "https://proxy.example/segment?api_key=SuperSecretProxyKey",
        "https://proxy.example/segment#SuperSecretProxyKey",
        "https://proxy.example/segment?#SuperSecretProxyKey",
        "ftp://proxy.example/segment?api_key=SuperSecretProxyKey",
    ],
)
@pytest.mark.parametrize("option", ["host", "oauth_auth_server"])
def test_a_refused_host_is_shown_without_its_query_or_fragment(option: str, host: str) -> None:
    with pytest.raises(ValueError, match=f"^{option} ") as refused:
        Client("key", **{option: host})
    assert "SuperSecretProxyKey" not in str(refused.value)
    assert "proxy.example/segment" in str(refused.value)  # which value it was


@pytest.mark.parametrize(
    "escape",
    [
        lambda text: text.replace("/", "\\/"),  # PHP's json_encode
        lambda text: text.replace("+", "\\u002B"),  # ASP.NET Core's
        lambda text: text.replace("c", "\\u0063"),
    ],
    ids=["slash", "plus", "letter"],
)
def test_a_secret_an_answer_echoes_as_json_escapes_it_is_masked_too(
    escape: Callable[[str], str],
) -> None:
    token = "cHJveHl1c2Vy+Oj9wYXNz/w=="
    echoed = escape(json.dumps({"error": f"denied Basic {token}", "n": "\\u0022"}))
    shown = shown_answer(echoed, [token])
    assert shown == "denied Basic cHJv…"


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ('{"message": "caf\\\\u00e9 \\u00e9"}', "caf\\u00e9 é"),  # an escaped backslash stays
        ('{"message": "C:\\\\/tmp"}', "C:\\/tmp"),
        ("plain \\u003cb\\u003e text", "plain \\u003cb\\u003e text"),  # not JSON: as sent
    ],
)
def test_an_answer_without_credentials_is_shown_as_it_reads(answer: str, shown: str) -> None:
    assert shown_answer(answer, ["wk_unrelated_key_123"]) == shown
