"""Request lines no browser sends, through real servers: Werkzeug's and uWSGI.

Werkzeug's development server reads an absolute-form target itself (``PATH_INFO``
is its path, ``Host`` its authority) and passes ``*`` and ``x/y`` on in
``PATH_INFO`` and ``RAW_URI``. uWSGI passes every target on as it came, in
``PATH_INFO`` and ``REQUEST_URI``. An app with a catch-all route (a CMS's) answers
each with a page.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.asgi.test_request_targets import send_request_line
from tests.e2e.servers import ROOT, free_port, uwsgi_binary
from tests.flask.conftest import MakeApp, Sent
from tests.web.raw_bytes import (
    RAW_QUERY,
    RAW_REFERRER,
    RAW_USER_AGENT,
    assert_read_as_the_framework_reads_them,
)

UWSGI = uwsgi_binary()
START_TIMEOUT = 20.0


def page(rest: str = "") -> str:
    return "<p>a page</p>"


def with_catch_all_route(app: Flask) -> Flask:
    app.add_url_rule("/<path:rest>", "catch_all", page)
    return app


@pytest.fixture
def werkzeug_port(make_app: MakeApp) -> Iterator[int]:
    """The port of Werkzeug's development server, serving the app with a catch-all route."""
    server = make_server("127.0.0.1", 0, with_catch_all_route(make_app()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join(10)


def page_urls(sent: Sent) -> list[str]:
    return sorted(message["properties"]["url"] for message in sent(type="page"))


def test_werkzeug_s_server_gives_an_absolute_form_target_s_path(
    werkzeug_port: int, sent: Sent
) -> None:
    send_request_line(werkzeug_port, "http://shop.example/account?n=1", "shop.example")
    # Werkzeug makes the target's authority the Host: with credentials, a host it refuses.
    send_request_line(werkzeug_port, "http://ada:s3cret@shop.example/account?n=2", "shop.example")
    assert page_urls(sent) == ["http://shop.example/account?n=1"]


def test_under_werkzeug_s_server_a_target_that_names_no_path_has_no_page_call(
    werkzeug_port: int, sent: Sent
) -> None:
    for target in ("*", "x/y?n=2", "/p?n=3"):
        assert send_request_line(werkzeug_port, target, "shop.example").endswith(b" 200 OK")
    assert page_urls(sent) == ["http://shop.example/p?n=3"]


def test_under_werkzeug_s_server_the_url_has_the_host_in_lower_case(
    werkzeug_port: int, sent: Sent
) -> None:
    send_request_line(werkzeug_port, "/p?n=1", "SHOP.Example")
    send_request_line(werkzeug_port, "/p?n=2", "shop.example:99999")  # Werkzeug refuses it
    assert page_urls(sent) == ["http://shop.example/p?n=1"]


def test_raw_bytes_in_the_query_and_referrer_are_escaped_and_a_user_agent_decoded(
    make_app: MakeApp, sent: Sent
) -> None:
    # As WSGI servers give the bytes: latin-1 text (PEP 3333).
    environ = {
        "QUERY_STRING": RAW_QUERY.decode("latin-1"),
        "HTTP_REFERER": RAW_REFERRER.decode("latin-1"),
        "HTTP_USER_AGENT": RAW_USER_AGENT.decode("latin-1"),
        "HTTP_ACCEPT": "text/html",
    }
    browser = with_catch_all_route(make_app()).test_client()
    assert (
        browser.get("/p", base_url="http://shop.example", environ_overrides=environ).status_code
        == 200
    )
    [message] = sent(type="page")
    assert_read_as_the_framework_reads_them(message, "http://shop.example/p")


UWSGI_APP = """
import os

from flask import Flask

from segment_flask import SegmentFlask

app = Flask(__name__)
app.config.update(
    SEGMENT_WRITE_KEY="test-key", SEGMENT_HOST=os.environ["SEGMENT_HOST"], SEGMENT_FLUSH_AT=1
)
SegmentFlask(app)


@app.get("/", defaults={"rest": ""})
@app.get("/<path:rest>")
def page(rest):
    return "<p>a page</p>"
"""

#: Sent last: once its page call arrives, those of the requests before it have too.
LAST = "/last"
SECRET_TARGET = "http://ada:s3cret@shop.example/account"
needs_uwsgi = pytest.mark.skipif(UWSGI is None, reason="uWSGI is not installed")


def uwsgi_pages(
    collector: Any, tmp_path: Path, requests: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The page calls of ``requests`` (target, Host) sent to the app under uWSGI."""
    assert UWSGI is not None
    app_file = tmp_path / "catch_all_app.py"
    app_file.write_text(UWSGI_APP)
    port = free_port()
    command = [
        UWSGI,
        "--http-socket",
        f"127.0.0.1:{port}",
        "--wsgi-file",
        str(app_file),
        "--callable",
        "app",
        "--enable-threads",  # the client's sender thread
        "--need-app",
        "--die-on-term",
    ]
    env = {**os.environ, "SEGMENT_HOST": collector.url, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "uwsgi.log"
    with log.open("wb") as stream:
        process = subprocess.Popen(
            command, env=env, stdout=stream, stderr=stream, start_new_session=True
        )
    try:
        wait_until_listening(port, process, log)
        for target, host in [*requests, (LAST, "shop.example")]:
            status = send_request_line(port, target, host)
            assert status.endswith(b" 200 OK"), (target, host, status, log.read_text())
        # One process, one sender thread: the page calls arrive in the order of the requests.
        pages = wait_for_page_of(collector, LAST, log)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    return [page for page in pages if page["properties"]["path"] != LAST]


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Once uWSGI listens, a request waits for its worker to be ready."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, f"uWSGI exited early:\n{log.read_text()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"uWSGI did not start:\n{log.read_text()}"
            time.sleep(0.05)


def wait_for_page_of(collector: Any, path: str, log: Path) -> list[dict[str, Any]]:
    """Every page call the collector has, once the one of ``path`` is among them."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        events = collector.events(type="page")
        assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
        pages = [event["message"] for event in events]
        if any(page["properties"]["path"] == path for page in pages):
            return pages
        assert time.monotonic() < deadline, f"no page call of {path}:\n{log.read_text()}"
        time.sleep(0.05)


@pytest.mark.slow
@needs_uwsgi
def test_under_uwsgi_an_absolute_form_target_is_a_page_of_the_host_header(
    segment_collector: Any, tmp_path: Path
) -> None:
    requests = [
        (SECRET_TARGET + "?n=1", "shop.example"),
        ("http://shop.example?n=2", "shop.example"),
        ("/p?n=3", "shop.example:99999"),  # a port Werkzeug refuses: no page call
    ]
    pages = uwsgi_pages(segment_collector, tmp_path, requests)
    assert sorted(page["properties"]["url"] for page in pages) == [
        "http://shop.example/?n=2",
        "http://shop.example/account?n=1",
    ]
    assert "s3cret" not in repr(pages)


@pytest.mark.slow
@needs_uwsgi
def test_under_uwsgi_every_page_url_is_one_a_browser_writes(
    segment_collector: Any, tmp_path: Path
) -> None:
    # No page for "*" and "x/y"; the Host's name in lower case, as in location.href.
    # What follows a fragment is no query, though uWSGI splits the target at its "?".
    requests = [
        ("*", "shop.example"),
        ("x/y?n=2", "shop.example"),
        ("/p?n=3", "SHOP.Example"),
        ("/f#top?utm_source=evil&n=4", "shop.example"),
    ]
    pages = uwsgi_pages(segment_collector, tmp_path, requests)
    assert [page["properties"]["url"] for page in pages] == [
        "http://shop.example/p?n=3",
        "http://shop.example/f",
    ]
    assert "campaign" not in pages[1]["context"]
