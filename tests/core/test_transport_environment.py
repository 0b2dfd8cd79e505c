"""What the client takes from the environment, as ``requests`` does: proxies (advice: an
unusable one is ignored, with a warning) and a CA bundle. The status probe goes the same
way as the batches. Real servers on loopback, TLS with a CA of the test's own."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from segment_core import Client
from segment_core.config import Config
from segment_core.status import probe_host
from tests.core.conftest import client_with_errors
from tests.core.loopback import Certificates, Loopback, accept, make_certificates, reply, start

PROXY_VARIABLES = ("http", "https", "all", "no")
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy and no CA bundle, but what the test sets."""
    for key in PROXY_VARIABLES:
        monkeypatch.delenv(f"{key}_proxy", raising=False)
        monkeypatch.delenv(f"{key.upper()}_PROXY", raising=False)
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (and, in a message, one no other test uses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificates: Certificates) -> Iterator[Loopback]:
    """An https server whose certificate only the test's CA vouches for."""
    server = start(tls=certificates.server_context())
    yield server
    server.stop()


def _client(clients: list[Client], host: str, **options: Any) -> tuple[Client, list[Exception]]:
    return client_with_errors(clients, host, sync_mode=True, **options)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "segment.core" and r.levelno == logging.WARNING
    ]


# -- proxies of the environment ------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ALL_PROXY", "socks5://127.0.0.1:{port}", "is a SOCKS proxy"),
        ("all_proxy", "socks5h://user:secret@127.0.0.1:{port}", "is a SOCKS proxy"),
        ("HTTP_PROXY", "htp://127.0.0.1:{port}", "has the scheme 'htp'"),
        ("http_proxy", "127.0.0.1:{port}0000", "is not a proxy URL"),
    ],
)
def test_an_unusable_proxy_of_the_environment_is_ignored_with_one_warning(
    variable: str,
    value: str,
    problem: str,
    free_port: int,
    clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Set for other programs (a VPN client's SOCKS proxy, ssh -D) or mistyped: the app
    # still starts, and the client connects without it.
    caplog.set_level(logging.WARNING, logger="segment.core")
    monkeypatch.setenv(variable, value.format(port=free_port))
    first, errors = _client(clients, "http://segment.invalid", max_retries=0)
    _client(clients, "http://segment.invalid")  # a second client: no second warning
    ok, _ = first.track("u1", "E")
    [warning] = [line for line in _warnings(caplog) if variable in line]
    assert warning.startswith(f"Segment: {variable}: ")
    assert problem in warning
    assert warning.endswith(
        "; connecting without a proxy (the proxies option sets one for Segment alone)"
    )
    assert "secret" not in warning
    # Sent directly: this machine looked the name up, and found nothing.
    [error] = errors
    assert not ok and "segment.invalid" in str(error) and "Proxy" not in str(error)


@pytest.mark.parametrize(
    ("given", "environment"),
    [
        # none given: the environment's usable one, chosen first for an http:// host
        ({}, {"ALL_PROXY": "socks5://127.0.0.1:1080", "HTTP_PROXY": "{proxy}"}),
        # another scheme's: the environment's http one
        ({"https": "http://127.0.0.1:9"}, {"HTTP_PROXY": "{proxy}"}),
        # the environment's http one comes first
        ({"all": "http://127.0.0.1:9"}, {"HTTP_PROXY": "{proxy}"}),
        ({"no_proxy": "elsewhere.invalid"}, {"HTTP_PROXY": "{proxy}"}),
        # the given no_proxy replaces the environment's
        ({"no_proxy": "elsewhere.invalid"}, {"HTTP_PROXY": "{proxy}", "NO_PROXY": "*"}),
        # None drops the key: the next one decides
        ({"http": None}, {"HTTP_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "{proxy}"}),
        ({"http": None, "all": "{proxy}"}, {}),
        # the environment's NO_PROXY is for the environment's proxies alone
        ({"http": "{proxy}"}, {"NO_PROXY": "*"}),
    ],
)
def test_the_environment_fills_what_the_proxies_option_does_not_name(
    clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
    given: dict[str, Any],
    environment: dict[str, str],
) -> None:
    """As ``requests`` merges them (analytics-python sends through it)."""
    proxy = start()
    try:
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value.format(proxy=proxy.url))
        given = {k: v if v is None else v.format(proxy=proxy.url) for k, v in given.items()}
        client, errors = _client(clients, "http://segment.invalid", proxies=given)
        assert client.track("u1", "Through The Proxy")[0], errors
        [seen] = proxy.posted("http://segment.invalid/v1/batch")
        assert seen.batch[0]["event"] == "Through The Proxy"
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    "given",
    [
        {"http": None},  # the environment's is not taken, and no other key is left
        {"http": ""},  # an empty one: no proxy
        {"no_proxy": "segment.invalid"},
    ],
)
def test_the_proxies_option_can_keep_the_environment_s_proxy_out(
    clients: list[Client], monkeypatch: pytest.MonkeyPatch, given: dict[str, Any]
) -> None:
    proxy = start()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client, errors = _client(clients, "http://segment.invalid", proxies=given, max_retries=0)
        assert not client.track("u1", "Sent Directly")[0]
        [error] = errors  # this machine looked the name up, and found nothing
        assert "segment.invalid" in str(error) and "Proxy" not in str(error)
        assert proxy.posted("http://segment.invalid/v1/batch") == []
    finally:
        proxy.stop()


def test_an_unusable_proxies_option_is_still_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ValueError, match=r"^proxies: 'socks5://127\.0\.0\.1:1081' is a SOCKS"):
        Client("write-key", proxies={"https": "socks5://127.0.0.1:1081"})


# -- CA bundles ----------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_named_by_the_environment_verifies_the_host(
    variable: str,
    tls_server: Loopback,
    certificates: Certificates,
    clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, str(certificates.ca))
    client, errors = _client(clients, tls_server.url)
    assert client.track("u1", "Over TLS")[0], errors
    [seen] = tls_server.posted()
    assert seen.batch[0]["event"] == "Over TLS"


def test_a_directory_of_certificates_verifies_the_host(
    tls_server: Loopback,
    certificates: Certificates,
    clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("naming certificates by their hash takes the openssl command")
    shutil.copy(certificates.ca, tmp_path / "ca.pem")
    subprocess.run([openssl, "rehash", str(tmp_path)], check=True, capture_output=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))
    client, errors = _client(clients, tls_server.url)
    assert client.track("u1", "Over TLS")[0], errors


def test_without_a_ca_bundle_the_host_is_still_verified(
    tls_server: Loopback, clients: list[Client]
) -> None:
    client, errors = _client(clients, tls_server.url, max_retries=0)
    assert not client.track("u1", "E")[0]
    assert "CERTIFICATE_VERIFY_FAILED" in str(errors[0])
    assert tls_server.seen == []


def test_a_ca_bundle_that_is_not_there_is_named_in_one_warning(
    tls_server: Loopback,
    clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    missing = tmp_path / "no-such-bundle.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    client, errors = _client(clients, tls_server.url, max_retries=0)
    _client(clients, tls_server.url)
    [warning] = _warnings(caplog)
    assert warning == (
        f"Segment: REQUESTS_CA_BUNDLE={str(missing)!r} is no file or directory; "
        "verifying TLS with the system's certificates instead"
    )
    # Verification is never turned off: the system's certificates do not know this CA.
    assert not client.track("u1", "E")[0]
    assert "CERTIFICATE_VERIFY_FAILED" in str(errors[0])


# -- the status probe ----------------------------------------------------------------


def test_the_status_probe_trusts_the_ca_bundle_as_the_batches_do(
    tls_server: Loopback,
    certificates: Certificates,
    clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config.from_options("write-key", host=tls_server.url)
    unverified = probe_host(config)
    assert not unverified.reachable and "CERTIFICATE_VERIFY_FAILED" in unverified.detail
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
    verified = probe_host(config)
    assert verified.reachable and verified.detail.startswith("answered HTTP 200 in ")
    client, errors = _client(clients, tls_server.url)
    assert client.track("u1", "E")[0], errors


def test_the_status_probe_reports_a_missing_ca_bundle_instead_of_failing(
    tls_server: Loopback, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "gone.pem"))
    probe = probe_host(Config.from_options("write-key", host=tls_server.url))
    assert not probe.reachable and "CERTIFICATE_VERIFY_FAILED" in probe.detail


def test_the_status_probe_reaches_a_host_on_this_machine_directly(
    free_port: int, monkeypatch: pytest.MonkeyPatch, clients: list[Client]
) -> None:
    # As the batches do: the environment's proxy is for the network, not for this machine.
    server = start(
        lambda handler, seen: reply(handler, 404) if seen.method == "GET" else accept(handler, seen)
    )
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port}")  # nothing there
        probe = probe_host(Config.from_options("write-key", host=server.url))
        assert probe.reachable and probe.detail.startswith("answered HTTP 404 in "), probe
        client, errors = _client(clients, server.url)
        assert client.track("u1", "E")[0], errors
    finally:
        server.stop()


def test_the_status_probe_gives_up_in_time_on_a_host_sending_a_byte_at_a_time() -> None:
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def dribble() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                # Each byte well within a read timeout: only a bound on the whole answer ends it.
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaa":
                    if stop.wait(0.3):
                        return
                    connection.sendall(bytes([byte]))

        server = threading.Thread(target=dribble, daemon=True)
        server.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        try:
            probe = probe_host(Config.from_options("write-key", host=url), timeout=1.0)
        finally:
            stop.set()
        elapsed = time.monotonic() - started
        server.join(10)
    assert (probe.reachable, probe.detail) == (False, "no answer within 1 s")
    assert elapsed < 1.5, f"the probe took {elapsed:.1f} s"
