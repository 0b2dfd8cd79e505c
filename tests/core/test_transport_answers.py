"""What the client makes of answers a well-behaved server does not give: redirects, 2xx
bodies it cannot read, huge error pages, odd Retry-After dates. Real servers on loopback."""

from __future__ import annotations

import base64
import email.utils
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from segment_core import Client
from segment_core.http_exchange import MAX_REDIRECTS
from segment_core.retry import parse_retry_after
from tests.core.conftest import client_with_errors
from tests.core.loopback import Loopback, Seen, accept, reply, start

FAST = {"retry_backoff_min": 0.01, "retry_backoff_max": 0.02}


@pytest.fixture
def servers() -> Iterator[list[Loopback]]:
    """Servers the test starts (append them), stopped after it."""
    started: list[Loopback] = []
    yield started
    for server in started:
        server.stop()


# -- redirects -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_a_307_or_308_on_the_same_server_is_followed_with_the_body_and_the_key(
    status: int, servers: list[Loopback], clients: list[Client]
) -> None:
    def moved(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/v1/batch":
            reply(handler, status, b"moved", [("Location", "/relay/v1/batch")])
        else:
            accept(handler, seen)

    server = start(moved)
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, sync_mode=True)
    assert client.track("u1", "Moved")[0]
    [first] = server.posted()
    [followed] = server.posted("/relay/v1/batch")
    assert followed.body == first.body  # the same POST, its body unchanged
    assert followed.headers["authorization"] == first.headers["authorization"]
    assert [m["event"] for m in followed.batch] == ["Moved"]
    assert errors == [] and client.stats()["retries"] == 0


@pytest.mark.parametrize("encoded", [False, True])
def test_a_redirect_to_a_page_that_names_the_write_key_shows_it_masked(
    servers: list[Loopback], clients: list[Client], encoded: bool
) -> None:
    key = "wk_AbCdEfGhIjKl"
    token = base64.b64encode(f"{key}:".encode()).decode()
    login = f"https://sso.example/login?next=/v1/batch&writeKey={key}"
    if encoded:  # and the request's Authorization, as a login page's query holds it
        login += "&t=" + quote(f"Basic {token}", safe="")
    server = start(lambda handler, seen: reply(handler, 307, headers=[("Location", login)]))
    servers.append(server)
    errors: list[Exception] = []
    client = Client(key, host=server.url, sync_mode=True, on_error=lambda e, m: errors.append(e))
    clients.append(client)
    assert not client.track("u1", "Lost")[0]
    [error] = errors
    assert "redirect to https://sso.example/login?next=/v1/batch&writeKey=wk_A" in str(error)
    assert key not in str(error) and key not in str(client.stats()["last_error"])
    for shown in (token, quote(token, safe="")):
        assert shown not in str(error) and shown not in str(client.stats()["last_error"])


def test_redirects_are_followed_a_few_times_at_most(
    servers: list[Loopback], clients: list[Client]
) -> None:
    def in_circles(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        hop = int(seen.path.rsplit("/", 1)[1]) if seen.path.startswith("/hop/") else 0
        reply(handler, 307, headers=[("Location", f"/hop/{hop + 1}")])

    server = start(in_circles)
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, sync_mode=True)
    assert not client.track("u1", "Lost")[0]
    assert len(server.seen) == 1 + MAX_REDIRECTS
    [error] = errors
    last = f"{server.url}/hop/{MAX_REDIRECTS + 1}"
    assert str(error).startswith(f"HTTP 307: redirect to {last} not followed: ")
    assert getattr(error, "status", None) == 307


def test_a_redirect_to_another_server_is_refused_and_gets_nothing(
    servers: list[Loopback], clients: list[Client]
) -> None:
    elsewhere = start()
    servers.append(elsewhere)
    target = f"{elsewhere.url}/v1/batch"
    server = start(lambda handler, seen: reply(handler, 307, headers=[("Location", target)]))
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, max_retries=3, **FAST)
    client.track("u1", "Kept Home")
    assert client.flush(10)
    assert elsewhere.seen == []  # neither the write key nor the events went there
    [error] = errors
    assert str(error) == (
        f"HTTP 307: redirect to {target} not followed: it leaves {server.url}, "
        "and the request carries credentials for that server alone"
    )
    assert len(server.seen) == 1  # final: asking again changes nothing


@pytest.mark.parametrize(
    ("target", "same"),
    [
        ("http://api.example/v2/batch", True),
        ("http://API.example:80/v1/batch", True),
        ("https://api.example/v1/batch", True),  # the same host, now over TLS
        ("https://api.example:8443/v1/batch", False),
        ("http://api.example:8080/v1/batch", False),
        ("http://relay.example/v1/batch", False),
        ("http://api.example.evil.example/v1/batch", False),
    ],
)
def test_which_redirects_stay_on_the_server(target: str, same: bool) -> None:
    # Servers on loopback cannot listen on 80 and 443: the rule itself, for the upgrade.
    from segment_core.http_exchange import _same_server

    assert _same_server("http://api.example/v1/batch", target) is same
    assert _same_server("https://api.example/v1/batch", "http://api.example/v1/batch") is False


@pytest.mark.parametrize("status", [301, 302, 303])
def test_other_redirects_fail_naming_the_status_and_the_location(
    status: int, servers: list[Loopback], clients: list[Client]
) -> None:
    server = start(lambda handler, seen: reply(handler, status, headers=[("Location", "/new")]))
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, sync_mode=True)
    assert not client.track("u1", "E")[0]
    [error] = errors
    assert str(error) == (
        f"HTTP {status}: redirect to {server.url}/new not followed: "
        "only 307 and 308 keep a POST's body"
    )
    assert server.posted("/new") == []


@pytest.mark.parametrize(
    ("location", "why"),
    [(None, "a redirect without a Location"), ("http://[::1", "which is not a URL")],
)
def test_a_redirect_to_nowhere_fails_saying_so(
    location: str | None, why: str, servers: list[Loopback], clients: list[Client]
) -> None:
    headers = [("Location", location)] if location else []
    server = start(lambda handler, seen: reply(handler, 307, headers=headers))
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, sync_mode=True)
    assert not client.track("u1", "E")[0]
    [error] = errors
    assert str(error).startswith("HTTP 307: ") and why in str(error)


def test_the_token_request_follows_a_redirect_too(
    servers: list[Loopback], clients: list[Client]
) -> None:
    pytest.importorskip("jwt")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )

    def authorization_server(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/token":
            reply(handler, 308, headers=[("Location", "/oauth2/token")])
        elif seen.path == "/oauth2/token" and b"client_assertion=" in seen.body:
            token = json.dumps({"access_token": "token-1", "expires_in": 3600}).encode()
            reply(handler, 200, token, [("Content-Type", "application/json")])
        else:
            accept(handler, seen)

    server = start(authorization_server)
    servers.append(server)
    client, errors = client_with_errors(
        clients,
        server.url,
        sync_mode=True,
        oauth_client_id="client-1",
        oauth_client_key=private_key,
        oauth_key_id="key-1",
        oauth_auth_server=server.url,
    )
    assert client.track("u1", "Authorized")[0], errors
    [batch] = server.posted()
    assert batch.headers["authorization"] == "Bearer token-1"


# -- answer bodies -------------------------------------------------------------------


def _accepted_then_cut_short(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    handler.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"success":'
    )
    handler.close_connection = True


def _accepted_with_a_body_said_to_be_gzip(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    reply(handler, 200, b'{"success": true}', [("Content-Encoding", "gzip")])


@pytest.mark.parametrize(
    "answer",
    [_accepted_then_cut_short, _accepted_with_a_body_said_to_be_gzip],
    ids=["cut-short", "not-gzip"],
)
@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_2xx_whose_body_cannot_be_read_is_delivered_once(
    answer: Any, spool: bool, servers: list[Loopback], clients: list[Client], tmp_path: Path
) -> None:
    server = start(answer)
    servers.append(server)
    options: dict[str, Any] = {"spool_dir": str(tmp_path / "spool")} if spool else {}
    client, errors = client_with_errors(clients, server.url, max_retries=3, **FAST, **options)
    for number in range(5):
        client.track("u1", "E", {"number": number})
    assert client.flush(10)
    stats = client.stats()
    assert (stats["sent"], stats["failed"], stats["retries"]) == (5, 0, 0)
    assert errors == []
    client.track("u1", "Next")
    assert client.flush(10)  # a batch taken for undelivered would go again with this one
    assert [len(seen.batch) for seen in server.posted()] == [5, 1]


def test_a_huge_error_page_is_not_read_past_its_start(
    servers: list[Loopback], clients: list[Client]
) -> None:
    size = 64 * 1024 * 1024
    written = [0]
    done = threading.Event()

    def huge_error_page(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        handler.send_response(503)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"<html>" + b"x" * (1024 * 1024 - 6)
        try:
            while written[0] < size:
                handler.wfile.write(chunk)
                written[0] += len(chunk)
        except OSError:  # the client closed the connection: what it did not want
            handler.close_connection = True
        finally:
            done.set()

    server = start(huge_error_page)
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, sync_mode=True, max_retries=0)
    assert not client.track("u1", "E")[0]
    [error] = errors
    assert getattr(error, "body", None) == "<html>" + "x" * 494
    assert done.wait(10)
    # What the socket buffers held, not the page: the client read 500 bytes and closed.
    assert written[0] < size // 2


@pytest.mark.parametrize("first", [200, 400], ids=["delivered", "refused"])
def test_a_short_answer_keeps_its_connection_for_the_next_batch(
    first: int, servers: list[Loopback], clients: list[Client]
) -> None:
    answers = iter([first, 200])

    def answer(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        reply(handler, next(answers), b'{"code": "x"}', [("Content-Type", "application/json")])

    server = start(answer)
    servers.append(server)
    client, _ = client_with_errors(clients, server.url, sync_mode=True)
    client.track("u1", "First")
    assert client.track("u1", "Second")[0]
    assert server.connections == 1


# -- Retry-After ---------------------------------------------------------------------


@pytest.mark.usefixtures("clock_east_of_utc")
def test_a_retry_after_date_without_a_zone_is_read_as_utc() -> None:
    # RFC 5322's "-0000": a time in UTC whose zone is not known, never local time.
    now = time.time()
    in_30_seconds = email.utils.formatdate(now + 30).rsplit(" ", 1)[0] + " -0000"
    assert parse_retry_after(in_30_seconds, now=now) == pytest.approx(30, abs=1)
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 -0000", now=now)
    assert far is not None and far > 2e11  # some 8,000 years: the cap applies


@pytest.mark.parametrize(
    "value", ["Fri, 31 Dec 9999 23:59:59 -0000", "Fri, 31 Dec 9999 23:59:59 +2400", "Mon, 99"]
)
@pytest.mark.usefixtures("clock_east_of_utc")
def test_an_odd_retry_after_date_still_retries(
    value: str, servers: list[Loopback], clients: list[Client]
) -> None:
    answers = iter([503])

    def busy_once(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        status = next(answers, 200)
        reply(handler, status, b"busy" if status == 503 else b"", [("Retry-After", value)])

    server = start(busy_once)
    servers.append(server)
    # retry_after=0: the longest wait honoured, so a far date waits the policy's least.
    client, errors = client_with_errors(clients, server.url, retry_after=0.0, **FAST)
    client.track("u1", "E")
    assert client.flush(10)
    stats = client.stats()
    assert (stats["sent"], stats["retries"], stats["failed"]) == (1, 1, 0), errors
    assert len(server.posted()) == 2


def test_a_redirect_chain_takes_no_longer_than_the_timeout(
    servers: list[Loopback], clients: list[Client]
) -> None:
    # Each answer takes 0.4 s: three redirects and the answer would take 1.6 s.
    def slow_hops(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        threading.Event().wait(0.4)
        hop = int(seen.path.rsplit("/", 1)[1]) if seen.path.startswith("/hop/") else 0
        if hop < MAX_REDIRECTS:
            reply(handler, 307, headers=[("Location", f"/hop/{hop + 1}")])
        else:
            accept(handler, seen)

    server = start(slow_hops)
    servers.append(server)
    client, errors = client_with_errors(
        clients, server.url, sync_mode=True, timeout=1.0, max_retries=0
    )
    started = time.monotonic()
    delivered, _ = client.track("u1", "Slow")
    elapsed = time.monotonic() - started
    assert not delivered
    assert elapsed < 1.4, f"the chain took {elapsed:.1f} s with timeout=1"
    [error] = errors
    assert "Timeout" in str(error) and getattr(error, "status", None) is None  # as a timeout


def test_a_redirect_asking_to_wait_is_followed_only_on_a_retry_after_that_wait(
    servers: list[Loopback], clients: list[Client]
) -> None:
    asked_at: list[float] = []

    def moved_in_a_while(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path != "/v1/batch":
            accept(handler, seen)
            return
        asked_at.append(time.monotonic())
        wait = [("Retry-After", "1")] if len(asked_at) == 1 else []
        reply(handler, 307, headers=[("Location", "/relay/v1/batch"), *wait])

    server = start(moved_in_a_while)
    servers.append(server)
    client, errors = client_with_errors(clients, server.url, **FAST)
    client.track("u1", "Moved Later")
    assert client.flush(10)
    assert errors == []
    [followed] = server.posted("/relay/v1/batch")
    assert [m["event"] for m in followed.batch] == ["Moved Later"]
    first, second = asked_at
    assert second - first >= 0.9  # the retry waited as asked, not the policy's 0.01 s
    assert client.stats()["retries"] == 1


def _private_key() -> str:
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


@pytest.mark.parametrize("refusal", ["loop", "another-server", "301", "token-refused"])
def test_an_answer_that_is_not_the_batch_endpoints_keeps_the_spooled_batch(
    refusal: str, servers: list[Loopback], clients: list[Client], tmp_path: Path
) -> None:
    pytest.importorskip("jwt")
    fixed = threading.Event()
    delivered: list[int] = []
    elsewhere = start()
    servers.append(elsewhere)

    def misconfigured(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/token":
            if refusal == "token-refused" and not fixed.is_set():
                reply(handler, 400, b'{"error": "invalid_client"}')
            else:
                token = json.dumps({"access_token": "token-1", "expires_in": 3600}).encode()
                reply(handler, 200, token, [("Content-Type", "application/json")])
        elif fixed.is_set() or refusal == "token-refused":
            delivered.extend(m["properties"]["n"] for m in seen.batch)
            accept(handler, seen)
        elif refusal == "loop":
            reply(handler, 307, headers=[("Location", "/a" if seen.path != "/a" else "/v1/batch")])
        elif refusal == "another-server":
            reply(handler, 307, headers=[("Location", f"{elsewhere.url}/v1/batch")])
        else:
            reply(handler, 301, headers=[("Location", "/v1/batch/")])

    server = start(misconfigured)
    servers.append(server)
    options: dict[str, Any] = {"spool_dir": tmp_path, "flush_at": 1, "max_retries": 0, **FAST}
    if refusal == "token-refused":
        options.update(
            oauth_client_id="client-1",
            oauth_client_key=_private_key(),
            oauth_key_id="key-1",
            oauth_auth_server=server.url,
        )
    first = Client("write-key", host=server.url, **options)
    for number in range(3):
        assert first.track("u1", "Spooled", {"n": number})[0]
    deadline = time.monotonic() + 10
    while first.stats()["spool"]["kept"] < 3:
        assert time.monotonic() < deadline, first.stats()
        threading.Event().wait(0.02)
    assert first.stats()["failed"] == 0
    assert not first.shutdown(2)  # they stay on disk
    fixed.set()
    later, errors = client_with_errors(clients, server.url, **options)
    assert later.flush(10), errors
    # At least once: a retry of the first client's, under way as its shutdown timed
    # out, may reach the fixed server too (the same messages, which Segment de-duplicates).
    assert sorted(set(delivered)) == [0, 1, 2]
    assert elsewhere.seen == []
