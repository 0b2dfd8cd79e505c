"""Servers and records for running Segment's analytics.js against the local collector.

analytics.js is analytics-next, installed from npm by ``scripts/install-js`` into
``tests/browser/js/node_modules``. Pages load it the way Segment's snippet does:
a stub ``window.analytics`` queues calls, then the standalone bundle
(``dist/umd/standalone.js``) loads, fetches the source's settings from the CDN
named by ``analytics._cdn`` and replays the queue.

:func:`serve_cdn` is that CDN, on loopback: it serves the bundle and its lazily
loaded chunks under ``/analytics-next/bundles/`` (the path analytics.js derives
from the CDN's URL) and ``/v1/projects/<write key>/settings``, whose Segment.io
integration sends events to the collector (``/v1/p``, ``/v1/t``, ``/v1/i``...)
over plain HTTP. Nothing is fetched from cdn.segment.com or sent to api.segment.io.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.browser._serve import FLUSH_PATH

ROOT = Path(__file__).resolve().parents[2]
AJS_PACKAGE = Path(__file__).resolve().parent / "js/node_modules/@segment/analytics-next"
AJS_BUNDLE_DIR = AJS_PACKAGE / "dist/umd"
AJS_BUNDLE = "standalone.js"
AJS_LIBRARY_NAME = "analytics.js"
BUNDLES_PATH = "/analytics-next/bundles/"
SETTINGS_PATH = re.compile(r"/v1/projects/([^/?]+)/settings")
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def analytics_next_version() -> str:
    version: str = json.loads((AJS_PACKAGE / "package.json").read_text())["version"]
    return version


def source_settings(collector_url: str, write_key: str) -> dict[str, Any]:
    """What Segment's CDN would answer for a source that sends to the collector.

    No destinations, no middleware, no remote plugins (so no chunk is loaded
    lazily either), metrics off, and the Segment.io integration pointed at the
    collector over plain HTTP.
    """
    api_host = urlsplit(collector_url).netloc + "/v1"
    segment_io = {"apiKey": write_key, "apiHost": api_host, "protocol": "http"}
    return {"integrations": {"Segment.io": segment_io}, "metrics": {"sampleRate": 0}}


@contextlib.contextmanager
def serve_cdn(collector_url: str, pages: Mapping[str, str]) -> Iterator[str]:
    """A stand-in for cdn.segment.com on loopback, plus the HTML ``pages`` ({path: html}).

    It knows every write key: each source's settings send to the collector.
    """
    documents = {path: ("text/html; charset=utf-8", html.encode()) for path, html in pages.items()}

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith(BUNDLES_PATH):
                self.path = "/" + self.path.removeprefix(BUNDLES_PATH)
                super().do_GET()
                return
            path = urlsplit(self.path).path
            settings_for = SETTINGS_PATH.fullmatch(path)
            if settings_for is not None:
                settings = source_settings(collector_url, write_key=settings_for[1])
                content_type, body = "application/json", json.dumps(settings).encode()
            elif path in documents:
                content_type, body = documents[path]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # Pages of another origin (the app's) fetch the settings, as from Segment's CDN.
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # Playwright's request log says what was asked for

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(AJS_BUNDLE_DIR))
    )
    thread = threading.Thread(target=server.serve_forever, name="fake-cdn", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT_SECONDS)


class AppServer:
    """A WSGI app (``module[:attribute]``) served by ``_serve.py`` in a process of its own.

    The process runs in the app's project ``directory``, with it on ``sys.path``,
    and ``env`` as its whole environment; its stderr is appended to ``log``.
    """

    def __init__(
        self,
        target: str,
        directory: Path,
        env: Mapping[str, str],
        log: Path,
        *,
        runner: str = "tests.browser._serve",  # or "tests.browser._serve_asgi"
    ) -> None:
        self.log = log
        pythonpath = os.pathsep.join([str(directory), str(ROOT)])
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", runner, target],
                cwd=directory,
                env={**env, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        try:
            self.url = self._read_url()
        except BaseException:
            self.stop()
            raise

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"the app did not start: {line!r}\n{self.log_tail()}")
        return line.removeprefix("listening on ").strip()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def flush(self) -> None:
        """Deliver the server's pending events to the collector now."""
        response = requests.post(self.url + FLUSH_PATH, timeout=START_TIMEOUT_SECONDS)
        assert response.status_code == 200, f"flush failed\n{self.log_tail()}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class NetworkLog:
    """Every request a browser context made, the ones that failed, and the console's
    errors (where Chromium says why it refused a cross-origin request).

    Playwright's sync API delivers these events during Playwright calls only: read
    the lists after one (a wait, an evaluate), not straight after blocking elsewhere.
    """

    def __init__(self, context: Any) -> None:
        self.requests: list[str] = []
        self.failures: list[str] = []
        self.console_errors: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        context.on(
            "requestfailed",
            lambda request: self.failures.append(f"{request.url}: {request.failure}"),
        )
        context.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def outside_loopback(self) -> list[str]:
        """Requests for any host but loopback (data: and about: URLs go nowhere)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname not in LOOPBACK_HOSTS
        ]

    def failed_to(self, base_url: str) -> list[str]:
        return [failure for failure in self.failures if failure.startswith(base_url)]
