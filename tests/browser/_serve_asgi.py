"""Serve one ASGI app on loopback in its own process (uvicorn), for the browser tests.

    python -m tests.browser._serve_asgi package.module[:attribute]   (default: app)

The ASGI twin of ``_serve.py``: prints ``listening on http://127.0.0.1:<port>``
once the socket listens, answers ``POST /__segment_test__/flush`` by flushing every
live client, and stops gracefully on SIGTERM (lifespan shutdown flushes too).
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
from typing import Any

import uvicorn

from segment_core.lifecycle import live_clients
from tests.browser._serve import FLUSH_PATH, FLUSH_TIMEOUT_SECONDS


def with_flush_route(app: Any) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == FLUSH_PATH and scope["method"] == "POST":
            results = [
                await asyncio.to_thread(client.flush, FLUSH_TIMEOUT_SECONDS)
                for client in live_clients()
            ]
            status = 200 if all(results) else 504
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return wrapped


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    module_name, _, attribute = argv[0].partition(":")
    app = getattr(importlib.import_module(module_name), attribute or "app")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(with_flush_route(app), log_level="warning", lifespan="on")
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
