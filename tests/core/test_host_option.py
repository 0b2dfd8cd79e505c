"""`host` and `write_key` are checked at construction; no display shows a secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from segment_core import Client
from segment_core.config import Config
from segment_core.hosts import redact_url
from tests.receiver import FAULT_MESSAGE, Fault, Receiver

NOT_BASE_URLS = [
    ("api.segment.io", "http:// or https://"),
    ("ftp://api.segment.io", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("https://", "must name a server"),
    ("https://:8080", "must name a server"),
    ("https://api.segment.io?debug=1", "query"),
    ("https://api.segment.io/?", "query"),
    ("https://api.segment.io#top", "fragment"),
    ("https://api.segment.io:99999", "not a valid URL"),
    ("https://api.segment.io:port", "not a valid URL"),
    (" https://api.segment.io", "spaces"),
    ("https://api.segment.io\n", "spaces"),
    ("https://api segment.io", "spaces"),
    ("https://[::1", "not a valid URL"),
    # Names IDNA cannot write: no connection could ever be made to them.
    ("https://\uff41\uff50\uff49.segment.io", "names no server that can be reached"),
    ("https://api\u3002segment.io", "names no server that can be reached"),
    ("http://\U0001f600.invalid", "names no server that can be reached"),
    # A doubled dot, a part over 63 characters: no socket can be opened to them either.
    ("https://api..segment.io", "between dots is empty or over 63 characters"),
    ("https://" + "a" * 64 + ".example", "between dots is empty or over 63 characters"),
    ("http://proxy\\segment:8080", "backslash"),
    # Characters no server's name holds.
    ("http://h;x", "';' cannot be in a server's name"),
    ("http://h%40evil", "'%' cannot be in a server's name"),
]


@pytest.mark.parametrize(("host", "complaint"), NOT_BASE_URLS)
def test_a_host_that_cannot_be_a_base_url_is_refused(host: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=r"^host") as raised:
        Client("key", host=host)
    assert complaint in str(raised.value)


@pytest.mark.parametrize(
    ("server", "complaint"),
    [*NOT_BASE_URLS, ("https://user:hunter2@oauth2.segment.io", "credentials")],
)
def test_oauth_auth_server_is_held_to_the_rules_of_host(server: str, complaint: str) -> None:
    # "/token" is added to it: after a query or a #fragment, it would be lost.
    with pytest.raises(ValueError, match=r"^oauth_auth_server") as raised:
        Client("key", oauth_auth_server=server)
    assert complaint in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "host",
    [
        "https://user:hunter2@api.segment.io",
        "https://hunter2@api.segment.io",
        "https://user:hunter2@api.segment.io?x=1",
    ],
)
def test_credentials_in_host_are_refused_and_never_shown(host: str) -> None:
    with pytest.raises(ValueError, match=r"^host") as raised:
        Client("key", host=host)
    assert "hunter2" not in str(raised.value)
    assert "credentials" in str(raised.value)


@pytest.mark.parametrize(
    "host",
    [
        "segment:hunter2@collector.internal",  # the scheme forgotten
        "segment:hunter2@collector.internal:8080/v1",
        "https:/segment:hunter2@collector.internal",  # one slash
        "//segment:hunter2@collector.internal",
        "http:\\\\segment:hunter2@collector.internal",
        " https://segment:hunter2@collector.internal",  # a space pasted before it
        "\thttps://segment:hunter2@collector.internal",
        "segment:hun\\ter2@collector.internal",  # a backslash in the password
    ],
)
@pytest.mark.parametrize("option", ["host", "oauth_auth_server"])
def test_credentials_of_a_url_written_without_its_scheme_are_never_shown(
    option: str, host: str
) -> None:
    with pytest.raises(ValueError, match=f"^{option}") as raised:
        Client("key", **{option: host})
    assert "hunter2" not in str(raised.value) and "segment:" not in str(raised.value)
    assert "***@collector.internal" in str(raised.value)


def test_segment_host_from_the_environment_is_checked_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGMENT_HOST", "https://u:hunter2@events.example")
    with pytest.raises(ValueError, match=r"^host") as raised:
        Client("key")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "host",
    [
        "https://api.segment.io",
        "https://api.segment.io/",
        "http://127.0.0.1:8765",
        "http://[::1]:8765",
        "https://events.eu1.segmentapis.com",
        "HTTPS://API.SEGMENT.IO",
        "https://caf\u00e9.example",  # an internationalised name, written as IDNA
        "http://segment_collector:8080",  # a container's service name
        "http://127.1:8765",  # as resolvers read it: 127.0.0.1
        "http://collector.local.:8765",
        "http://collector.2024:8765",  # numbers: the resolver's (a hosts file) to answer
    ],
)
def test_usable_hosts_are_accepted(host: str) -> None:
    assert Config.from_options("key", host=host).host == host


@pytest.mark.parametrize(
    ("host", "posted_to"),
    [
        ("https://api.segment.io/v1", "https://api.segment.io/v1/v1/batch"),
        ("https://api.segment.io/v1/", "https://api.segment.io/v1/v1/batch"),
        ("https://proxy.example/seg/v1/batch", "https://proxy.example/seg/v1/batch/v1/batch"),
    ],
)
def test_a_host_ending_with_the_path_the_client_adds_is_warned_of(
    host: str, posted_to: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        Client("key", host=host, send=False)
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"events would go to {posted_to};" in line
    assert line.endswith(" out of host")


@pytest.mark.parametrize("host", ["https://api.segment.io", "https://proxy.example/v1x"])
def test_other_hosts_are_not_warned_of(host: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        Client("key", host=host, send=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_404_names_the_url_posted_to(receiver: Receiver, clients: list[Client]) -> None:
    errors: list[Exception] = []
    client = Client(
        "key", host=receiver.url + "/segment", on_error=lambda error, batch: errors.append(error)
    )
    clients.append(client)
    receiver.fail_next(Fault(404))
    client.track("u1", "Lost")
    assert client.flush(10)
    [error] = errors
    assert str(error) == f"HTTP 404 from {receiver.url}/segment/v1/batch: {FAULT_MESSAGE}"


@pytest.mark.parametrize("prefix", ["/segment", "/segment/", "/a/b"])
def test_a_path_prefix_is_honoured(make_client: Any, receiver: Receiver, prefix: str) -> None:
    client = make_client(host=receiver.url + prefix)
    client.track("u1", "Prefixed")
    assert client.flush(10)
    [request] = receiver.ok_requests()
    assert request.path == prefix.rstrip("/") + "/v1/batch"


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        (" wk_123", "around it"),
        ("wk_123\n", "around it"),
        ("wk_123\t", "around it"),
        ("wk:123", "':'"),
        ("wk 123", "spaces or control"),
        ("wk\x00123", "spaces or control"),
        ("wk\u2028123", "spaces or control"),
    ],
)
def test_a_write_key_that_cannot_work_is_refused_without_showing_it(
    key: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=r"^write_key") as raised:
        Client(key)
    assert complaint in str(raised.value)
    assert "123" not in str(raised.value)


def test_no_display_shows_the_write_key_or_a_proxy_password() -> None:
    client = Client(
        "wk_SecretWriteKey1234",
        host="https://api.segment.io",
        proxies={"https": "http://user:hunter2@proxy.example:3128"},
        send=False,
    )
    shown = [repr(client), repr(client.config), str(client.config.public_dict())]
    for text in shown:
        assert "SecretWriteKey" not in text
        assert "hunter2" not in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("https://u:pw@events.example/v1", "https://***@events.example/v1"),
        ("https://events.example/@fs/a.js", "https://events.example/@fs/a.js"),
        ("/@fs/a.js", "/@fs/a.js"),  # a path: no server, no credentials
        ("//u:pw@events.example", "//***@events.example"),
        ("https://u:p\\w@events.example", "https://***@events.example"),
    ],
)
def test_a_url_is_shown_with_its_credentials_masked_and_nothing_else(
    value: str, shown: str
) -> None:
    assert redact_url(value) == shown
