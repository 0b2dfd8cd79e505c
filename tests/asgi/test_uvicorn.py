"""A real uvicorn in a subprocess, stopped with SIGTERM: every accepted event is delivered.

The app's client holds its events until flushed, so what reaches the collector
was sent as the stop began (uvicorn's SIGTERM handler starts the delivery) or by
the middleware's flush at lifespan shutdown: uvicorn logs the batch before
"Application shutdown complete". After its graceful shutdown uvicorn re-raises
SIGTERM with the default handler, so the process dies by the signal and
``atexit`` never runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from segment_core.collector.handle import CollectorHandle

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 25
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, f"uvicorn exited early:\n{log.read_text()}"
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"uvicorn did not start:\n{log.read_text()}"
            time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("served", ["starlette", "plain"])
def test_sigterm_delivers_every_accepted_event(
    segment_collector: CollectorHandle, tmp_path: Path, served: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "SEGMENT_HOST": segment_collector.url, "SERVED_APP": served}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.asgi.served:app",
        "--host=127.0.0.1",
        f"--port={port}",
        "--lifespan=on",  # a failed lifespan would stop the server: it must be answered
        "--no-access-log",
        "--log-level=info",
    ]
    with log.open("wb") as stream:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
    try:
        wait_until_serving(url, process, log)
        with httpx.Client(base_url=url) as http:
            for n in range(REQUESTS):
                assert http.get(f"/track/?n={n}").status_code == 200
        assert segment_collector.events() == []  # held by the app's client
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    events = segment_collector.wait_for(2 * REQUESTS, timeout=10)
    assert len(events) == 2 * REQUESTS
    assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
    types = sorted(e["message"]["type"] for e in events)
    assert types == ["page"] * REQUESTS + ["track"] * REQUESTS
    output = log.read_text()
    flushed = output.index("segment batch sent")
    # Sent as the stop began, or by the lifespan's flush: not left to the exit, which
    # uvicorn ends by SIGTERM without atexit.
    assert output.index("Started server process") < flushed
    assert flushed < output.index("Application shutdown complete")


@pytest.mark.slow
def test_workers_deliver_what_every_client_holds_at_their_lifespan_shutdown(
    segment_collector: CollectorHandle, tmp_path: Path
) -> None:
    """uvicorn's --workers end their processes without atexit: the middleware's flush
    at lifespan shutdown delivers for the app's own client too."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "SEGMENT_HOST": segment_collector.url, "SERVED_APP": "starlette"}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.asgi.served:app",
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=2",
        "--no-access-log",
    ]
    with log.open("wb") as stream:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
    try:
        wait_until_serving(url, process, log)
        with httpx.Client(base_url=url) as http:
            for n in range(REQUESTS):
                # A connection of its own each: both workers take some.
                assert http.get(f"/own/?n={n}", headers={"Connection": "close"}).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    events = segment_collector.wait_for(REQUESTS, timeout=10, event="Report Exported")
    assert sorted(int(e["message"]["properties"]["n"]) for e in events) == list(range(REQUESTS))


@pytest.mark.slow
@pytest.mark.parametrize("hooks", ["", "plain", "async"])
def test_a_page_streaming_when_the_shutdown_timeout_cuts_it_gets_its_page_call(
    segment_collector: CollectorHandle, tmp_path: Path, hooks: str
) -> None:
    # uvicorn cancels the request once --timeout-graceful-shutdown has passed, then
    # runs lifespan shutdown at once, without waiting for the cancelled request.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "uvicorn.log"
    env = {
        **os.environ,
        "SEGMENT_HOST": segment_collector.url,
        "SERVED_APP": "starlette",
        "SERVED_HOOKS": hooks,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.asgi.served:app",
        "--host=127.0.0.1",
        f"--port={port}",
        "--timeout-graceful-shutdown=1",
        "--no-access-log",
    ]
    with log.open("wb") as stream:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
    try:
        wait_until_serving(url, process, log)
        with httpx.stream("GET", f"{url}/long-stream/", headers={"Accept": "text/html"}) as page:
            body = page.iter_raw()  # kept: an iterator let go of closes the connection
            assert next(body).startswith(b"<p>0</p>")  # the visitor sees the page
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    pages = segment_collector.wait_for(1, type="page")
    assert [event["message"]["name"] for event in pages] == ["long-stream"]
    assert pages[0]["message"]["anonymousId"] == page.cookies["ajs_anonymous_id"]
    assert pages[0]["message"]["properties"].get("hooked", "") == hooks
    assert "Cancel 1 running task(s)" in log.read_text()  # cut by the shutdown timeout
