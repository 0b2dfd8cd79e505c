"""Run a collector in a daemon thread of this process, for tests and scripts."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from segment_core.collector.app import create_app
from segment_core.collector.handle import CollectorHandle

__all__ = ["bind_socket", "run_in_background", "uvicorn_config"]

STARTUP_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; with port 0 the system picks a free port.

    Listening before the server starts lets a caller print or use the port at
    once: early connections wait in the backlog instead of being refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto is IPPROTO_TCP, and without it every response waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def uvicorn_config(app: object, *, log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn settings the collector runs with."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="on",
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        # Open event streams must not hold a shutdown for long.
        timeout_graceful_shutdown=2,
    )


def run_in_background(
    port: int = 0,
    *,
    write_key: str | None = None,
    db: str | None = None,
    host: str = "127.0.0.1",
    forward: str | None = None,
) -> CollectorHandle:
    """Start a collector in a daemon thread; return once it is listening.

    >>> with run_in_background() as collector:                      # doctest: +SKIP
    ...     print(collector.url)
    http://127.0.0.1:54321
    """
    app = create_app(write_key=write_key, db=db, forward=forward)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="segment-collector", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STOP_TIMEOUT_SECONDS)
            sock.close()
            raise RuntimeError(f"the collector did not start on {host}:{bound_port}")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        sock.close()

    url_host = f"[{host}]" if ":" in host else host
    return CollectorHandle(f"http://{url_host}:{bound_port}", on_stop=stop)
