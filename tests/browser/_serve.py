"""Serve one WSGI app on loopback in its own process, for the browser tests.

    python -m tests.browser._serve package.module[:attribute]   (default: application)

Prints ``listening on http://127.0.0.1:<port>`` once the socket listens, then
serves (threaded, werkzeug) until SIGTERM. Each app runs in a process of its own:
Django's settings are process-wide (tests/django configures its own), and the
adapters make their client the process's default one.

``POST /__segment_test__/flush`` flushes every live client of the process, so a
test need not wait ``flush_interval`` for the server's events; every other
request goes to the app untouched.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from werkzeug.serving import make_server

from segment_core.lifecycle import live_clients

FLUSH_PATH = "/__segment_test__/flush"
FLUSH_TIMEOUT_SECONDS = 10.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def load_app(target: str) -> WSGIApp:
    module_name, _, attribute = target.partition(":")
    # gunicorn's convention, so an example's gunicorn target works unchanged.
    app: WSGIApp = getattr(importlib.import_module(module_name), attribute or "application")
    return app


def with_flush_route(app: WSGIApp) -> WSGIApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == FLUSH_PATH and environ["REQUEST_METHOD"] == "POST":
            results = [client.flush(FLUSH_TIMEOUT_SECONDS) for client in live_clients()]
            delivered = all(results)
            start_response("200 OK" if delivered else "504 Gateway Timeout", [])
            return [b""]
        return app(environ, start_response)

    return wrapped


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    server = make_server("127.0.0.1", 0, with_flush_route(load_app(argv[0])), threaded=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds serve_forever; atexit then delivers what is left

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
