"""`host` and `write_key` are checked at construction; no display shows a secret."""

from __future__ import annotations

from typing import Any

import pytest

from segment_core import Client
from segment_core.config import Config
from tests.receiver import Receiver


@pytest.mark.parametrize(
    ("host", "complaint"),
    [
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
    ],
)
def test_a_host_that_cannot_be_a_base_url_is_refused(host: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=r"^host") as raised:
        Client("key", host=host)
    assert complaint in str(raised.value)


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
    ],
)
def test_usable_hosts_are_accepted(host: str) -> None:
    assert Config.from_options("key", host=host).host == host


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
