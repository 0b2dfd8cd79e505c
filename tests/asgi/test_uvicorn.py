"""A real uvicorn in a subprocess, stopped with SIGTERM: every accepted event is delivered.

The app's client holds its events until flushed, so what reaches the collector
was sent as the stop began (uvicorn's SIGTERM handler starts the delivery) or by
the middleware's flush at lifespan shutdown: uvicorn logs the batch before
"Application shutdown complete". After its graceful shutdown uvicorn re-raises
SIGTERM with the default handler, so the process dies by the signal and
``atexit`` never runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from segment_core.collector.handle import CollectorHandle
from tests.e2e.servers import ROOT, free_port, uvicorn_argv

REQUESTS = 25
START_TIMEOUT = 20.0


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


@dataclass
class Uvicorn:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; it must end by itself."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) in (0, -signal.SIGTERM), self.log.read_text()


@contextlib.contextmanager
def uvicorn(
    collector: CollectorHandle, tmp_path: Path, options: list[str], **env: str
) -> Iterator[Uvicorn]:
    """``tests.asgi.served:app`` under uvicorn with ``options``, sending to ``collector``,
    serving once it yields; killed afterwards if still running."""
    port = free_port()
    log = tmp_path / "uvicorn.log"
    command = uvicorn_argv("tests.asgi.served:app", port, *options)
    environment = {**os.environ, "SEGMENT_HOST": collector.url, **env}
    with log.open("wb") as stream:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=stream, stderr=stream)
    served = Uvicorn(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_serving(served.url, process, log)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("served", ["starlette", "plain"])
def test_sigterm_delivers_every_accepted_event(
    segment_collector: CollectorHandle, tmp_path: Path, served: str
) -> None:
    # A failed lifespan would stop the server: it must be answered.
    options = ["--lifespan=on", "--log-level=info"]
    with uvicorn(segment_collector, tmp_path, options, SERVED_APP=served) as server:
        with httpx.Client(base_url=server.url) as http:
            for n in range(REQUESTS):
                assert http.get(f"/track/?n={n}").status_code == 200
        assert segment_collector.events() == []  # held by the app's client
        server.stop()
    events = segment_collector.wait_for(2 * REQUESTS, timeout=10)
    assert len(events) == 2 * REQUESTS
    assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
    types = sorted(e["message"]["type"] for e in events)
    assert types == ["page"] * REQUESTS + ["track"] * REQUESTS
    output = server.log.read_text()
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
    with uvicorn(segment_collector, tmp_path, ["--workers=2"], SERVED_APP="starlette") as server:
        with httpx.Client(base_url=server.url) as http:
            for n in range(REQUESTS):
                # A connection of its own each: both workers take some.
                assert http.get(f"/own/?n={n}", headers={"Connection": "close"}).status_code == 200
        server.stop()
    events = segment_collector.wait_for(REQUESTS, timeout=10, event="Report Exported")
    assert sorted(int(e["message"]["properties"]["n"]) for e in events) == list(range(REQUESTS))


@pytest.mark.slow
@pytest.mark.parametrize("hooks", ["", "plain", "async"])
def test_a_page_streaming_when_the_shutdown_timeout_cuts_it_gets_its_page_call(
    segment_collector: CollectorHandle, tmp_path: Path, hooks: str
) -> None:
    # uvicorn cancels the request once --timeout-graceful-shutdown has passed, then
    # runs lifespan shutdown at once, without waiting for the cancelled request.
    options = ["--timeout-graceful-shutdown=1"]
    env = {"SERVED_APP": "starlette", "SERVED_HOOKS": hooks}
    with uvicorn(segment_collector, tmp_path, options, **env) as server:
        page_url = f"{server.url}/long-stream/"
        with httpx.stream("GET", page_url, headers={"Accept": "text/html"}) as page:
            body = page.iter_raw()  # kept: an iterator let go of closes the connection
            assert next(body).startswith(b"<p>0</p>")  # the visitor sees the page
            server.stop()
    pages = segment_collector.wait_for(1, type="page")
    assert [event["message"]["name"] for event in pages] == ["long-stream"]
    assert pages[0]["message"]["anonymousId"] == page.cookies["ajs_anonymous_id"]
    assert pages[0]["message"]["properties"].get("hooked", "") == hooks
    assert "Cancel 1 running task(s)" in server.log.read_text()  # cut by the shutdown timeout


@pytest.mark.slow
def test_a_stop_while_the_host_hangs_waits_one_shutdown_timeout_for_every_client(
    segment_collector: CollectorHandle, tmp_path: Path
) -> None:
    # The middleware's client and the app's own one: their lifespan flushes run side
    # by side, and the exit after it does not wait again (5 s each: not 15 s in all).
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        options = ["--lifespan=on", "--log-level=info"]
        env = {"SERVED_APP": "starlette", "SEGMENT_HOST": host}
        with uvicorn(segment_collector, tmp_path, options, **env) as server:
            with httpx.Client(base_url=server.url) as http:
                assert http.get("/track/?n=1").status_code == 200
                assert http.get("/own/?n=1").status_code == 200
            started = time.monotonic()
            server.stop()
            elapsed = time.monotonic() - started
    output = server.log.read_text()
    assert elapsed < 9, f"{elapsed:.1f}s to stop\n{output}"
    assert output.count("message(s) undelivered") == 2, output
