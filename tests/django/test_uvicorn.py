"""Django under a real uvicorn, in a subprocess, stopped with SIGTERM.

The project (``served.py``) holds its events until something flushes them; uvicorn
ends the process without ``atexit`` once lifespan is over, so what reaches the
collector was flushed at lifespan shutdown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from segment_core.collector.handle import CollectorHandle
from tests.asgi.test_uvicorn import ROOT, free_port, wait_until_serving

NO_LIFESPAN = "Django got a request under ASGI but no lifespan startup"


@contextmanager
def serving(
    collector: CollectorHandle, log: Path, served: str, *options: str, hooks: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tests.django.served`` under uvicorn (``served``: its ``SERVED_ASGI``); its
    URL and process, killed on the way out if still running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SEGMENT_HOST": collector.url, "SERVED_ASGI": served}
    if hooks:
        env["SERVED_HOOKS"] = "1"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.django.served:application",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-access-log",
        *options,
    ]
    with log.open("wb") as stream:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
    try:
        wait_until_serving(url, process, log)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("hooks", [False, True], ids=["in the event loop", "in a thread"])
def test_a_page_streaming_when_the_shutdown_timeout_cuts_it_gets_its_page_call(
    segment_collector: CollectorHandle, tmp_path: Path, hooks: bool
) -> None:
    # uvicorn cancels the request once --timeout-graceful-shutdown has passed; Django's
    # handler then closes no response, and the process ends after lifespan shutdown.
    log = tmp_path / "uvicorn.log"
    options = ("--timeout-graceful-shutdown=1",)
    with (
        serving(segment_collector, log, "segment_django", *options, hooks=hooks) as (url, process),
        httpx.stream("GET", f"{url}/long-stream/", headers={"Accept": "text/html"}) as page,
    ):
        body = page.iter_raw()  # kept: an iterator let go of closes the connection
        assert next(body).startswith(b"<p>0</p>")  # the visitor sees the page
        stop(process, log)
    pages = segment_collector.wait_for(1, type="page")
    assert [event["message"]["name"] for event in pages] == ["long-stream"]
    assert pages[0]["message"]["anonymousId"] == page.cookies["ajs_anonymous_id"]
    assert pages[0]["message"]["properties"].get("hooked", False) is hooks
    assert "Cancel 1 running task(s)" in log.read_text()  # cut by the shutdown timeout


@pytest.mark.slow
def test_a_streamed_page_whose_body_fails_gets_its_page_call_as_it_fails(
    segment_collector: CollectorHandle, tmp_path: Path
) -> None:
    # Django's ASGI handler closes no response whose body raised: the page call is made
    # as the body fails, not left to a close that never comes (nor to the cycle
    # collector, which would drop it, or to the shutdown, which would date it late).
    log = tmp_path / "uvicorn.log"
    with serving(segment_collector, log, "segment_django") as (url, process):
        for name in ("failing-stream", "failing-sync-stream"):
            with (
                httpx.stream("GET", f"{url}/{name}/", headers={"Accept": "text/html"}) as page,
                pytest.raises(httpx.RemoteProtocolError),  # the body was cut
            ):
                page.read()
        assert httpx.get(f"{url}/collect/").status_code == 200
        stop(process, log)
    pages = segment_collector.wait_for(2, type="page")
    assert sorted(event["message"]["name"] for event in pages) == [
        "failing-stream",
        "failing-sync-stream",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("served", "warnings"), [("django", 1), ("segment_django", 0)])
def test_django_s_own_asgi_application_says_once_that_nothing_flushes_at_shutdown(
    segment_collector: CollectorHandle, tmp_path: Path, served: str, warnings: int
) -> None:
    log = tmp_path / "uvicorn.log"
    with serving(segment_collector, log, served) as (url, process):
        for _ in range(2):
            assert httpx.get(f"{url}/", headers={"Accept": "text/html"}).status_code == 200
        stop(process, log)
    output = log.read_text()
    assert output.count(NO_LIFESPAN) == warnings, output
    if warnings:
        assert "segment_django.asgi.get_asgi_application()" in output


_OWN_ASGI_APPLICATION = """
import asyncio, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
from django.conf import settings
settings.configure(
    SECRET_KEY="x" * 50,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "segment_django"],
    MIDDLEWARE=["segment_django.middleware.SegmentMiddleware"],
    DATABASES={},
    SEGMENT=SEGMENT,
)
import httpx
from django.core.asgi import get_asgi_application
from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("", lambda request: HttpResponse("<p>home</p>"), name="home")]
app = get_asgi_application()

async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        print((await client.get("/", headers={"Accept": "text/html"})).status_code)

asyncio.run(main())
"""


@pytest.mark.parametrize(("send", "warned"), [(True, True), (False, False)])
def test_django_s_own_asgi_application_warns_only_for_a_client_that_sends(
    segment_collector: CollectorHandle, send: bool, warned: bool
) -> None:
    # A client made with SEND False holds nothing a server could lose.
    segment = {"WRITE_KEY": "wk", "HOST": segment_collector.url, "SEND": send}
    script = f"SEGMENT = {segment!r}\n{_OWN_ASGI_APPLICATION}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "200" in done.stdout.splitlines(), done.stdout
    assert (NO_LIFESPAN in done.stdout) is warned, done.stdout
