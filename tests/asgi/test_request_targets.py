"""Request lines no browser sends, through a real uvicorn with its h11 server.

h11 passes the request line's target on as it came, in ``path`` and ``raw_path``:
``http://ada:s3cret@shop.example/account`` (what open-proxy scanners send), ``*``
and ``x/y`` too; the ``Host`` header as it came (``SHOP.Example``,
``shop.example:99999``). A plain ASGI app answers every one of them with a page.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import run_in_background
from tests.asgi.test_uvicorn import ROOT, free_port, wait_until_serving

#: (request target, Host header) of each request, in the order sent.
REQUESTS = [
    ("http://ada:s3cret@shop.example/account?n=1", "shop.example"),
    ("*", "shop.example"),
    ("x/y?n=3", "shop.example"),
    ("/p?n=4", "SHOP.Example"),
    ("/p?n=5", "shop.example:99999"),
    ("/p?n=6", "shop.example:0"),
    ("/p?n=7", "shop.example:65535"),
    ("/f#top?utm_source=evil&n=8", "shop.example"),
]


def send_request_line(port: int, target: str, host: str) -> bytes:
    """``GET <target> HTTP/1.1`` as a browser's navigation to ``port``; the status line."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n")[0]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """The page calls of :data:`REQUESTS` sent to uvicorn (h11), delivered as it stops."""
    log = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    with run_in_background() as collector:
        port = free_port()
        env = {**os.environ, "SEGMENT_HOST": collector.url, "SERVED_APP": "plain"}
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.asgi.served:app",
            "--http=h11",
            "--host=127.0.0.1",
            f"--port={port}",
            "--lifespan=on",  # the app's client delivers at lifespan shutdown
            "--no-access-log",
        ]
        with log.open("wb") as stream:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", process, log)
            for target, host in REQUESTS:
                status = send_request_line(port, target, host)
                assert status == b"HTTP/1.1 200 OK", (target, host, status, log.read_text())
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        events = collector.events(type="page")
        assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
        yield [event["message"] for event in events]


@pytest.mark.slow
def test_an_absolute_form_target_is_a_page_of_the_host_header_without_its_credentials(
    pages: list[dict[str, Any]],
) -> None:
    [page] = [p for p in pages if p["properties"]["search"] == "?n=1"]
    assert page["properties"]["url"] == "http://shop.example/account?n=1"
    assert page["properties"]["path"] == page["context"]["page"]["path"] == "/account"
    assert page["name"] == "/account"
    assert "s3cret" not in repr(pages)


@pytest.mark.slow
def test_a_host_whose_port_is_out_of_range_has_no_page_call(pages: list[dict[str, Any]]) -> None:
    urls = [page["properties"].get("url") for page in pages]
    assert not [url for url in urls if url and ("99999" in url or ":0/" in url)]
    assert "http://shop.example:65535/p?n=7" in urls


@pytest.mark.slow
def test_every_page_url_is_one_a_browser_writes(pages: list[dict[str, Any]]) -> None:
    # No page for "*" and "x/y"; the Host's name in lower case, as in location.href.
    assert sorted(page["properties"]["url"] for page in pages) == [
        "http://shop.example/account?n=1",
        "http://shop.example/f",
        "http://shop.example/p?n=4",
        "http://shop.example:65535/p?n=7",
    ]


@pytest.mark.slow
def test_what_follows_a_fragment_in_the_target_is_no_query(pages: list[dict[str, Any]]) -> None:
    # h11 splits "/f#top?utm_source=evil" at its "?": the query it gives is the fragment's.
    [page] = [p for p in pages if p["properties"]["path"] == "/f"]
    assert page["properties"]["search"] == page["context"]["page"]["search"] == ""
    assert "campaign" not in page["context"]
