"""Run a collector in a daemon thread of this process, for tests and scripts."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from segment_core._clock import monotonic
from segment_core.collector.app import CollectorApp, create_app
from segment_core.collector.handle import CollectorHandle
from segment_core.collector.oauth import OAuthServer

__all__ = ["CollectorServer", "bind_socket", "local_url", "run_in_background"]

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
        if host == "::":  # every address, IPv4 ones too (some systems default to IPv6 only)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def local_url(host: str, port: int) -> str:
    """The URL that reaches a collector listening on ``host``, from this machine.

    On every address ("0.0.0.0", "::") it is reached through this machine's own:
    the wildcard is no name a client can use, nor one the Host check accepts.
    """
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    url_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{url_host}:{port}"


class _ThreadLevels(logging.Filter):
    """Drops the records of uvicorn's loggers made on a server's thread below its level.

    How a server embedded in a process logs at its own level: uvicorn's own way
    (``Config(log_level=...)``) sets the levels of the process's uvicorn loggers, and
    an app of the process may log through them too. The filter is on those loggers
    only while such a server runs.
    """

    LOGGERS = ("uvicorn.error", "uvicorn.access")

    def __init__(self) -> None:
        super().__init__()
        self._levels: dict[int, int] = {}  # by thread id
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self._levels.get(threading.get_ident(), logging.NOTSET)

    @contextmanager
    def on_this_thread(self, level: int) -> Iterator[None]:
        thread = threading.get_ident()
        with self._lock:
            if not self._levels:
                for name in self.LOGGERS:
                    logging.getLogger(name).addFilter(self)
            self._levels[thread] = level
        try:
            yield
        finally:
            with self._lock:
                del self._levels[thread]
                if not self._levels:
                    for name in self.LOGGERS:
                        logging.getLogger(name).removeFilter(self)


_thread_levels = _ThreadLevels()


class CollectorServer(uvicorn.Server):
    """uvicorn's server with the collector's settings; ends event streams on exit.

    ``own_logging``: configure logging as uvicorn's command line does, for a process
    that runs only the collector. False leaves the process's logging alone (see
    :func:`run_in_background`): the server's records below ``log_level`` are dropped
    as it makes them, and its loggers keep their levels, handlers and propagation.
    """

    def __init__(
        self, app: CollectorApp, *, log_level: str = "warning", own_logging: bool = True
    ) -> None:
        super().__init__(_config(app, log_level, own_logging=own_logging))
        self.app = app
        self._own_logging = own_logging
        self._log_level = LOG_LEVELS[log_level.lower()]

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # asyncio times the loop's timers (the tick that sees a stop, a delayed answer)
        # with time.monotonic, which a test of this process may freeze: with the
        # library's clock, they run on (see segment_core._clock).
        asyncio.get_running_loop().time = monotonic  # type: ignore[method-assign]
        if self._own_logging:
            await super().serve(sockets)
            return
        with _thread_levels.on_this_thread(self._log_level):
            await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app.begin_shutdown()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """Ask the server to stop (from another thread)."""
        self.app.begin_shutdown()
        self.should_exit = True


def _config(app: CollectorApp, log_level: str, *, own_logging: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="on",
        # uvicorn's logging configuration (dictConfig) closes the process's handlers:
        # a test run's --log-file, an app's log file. Without it, uvicorn's records
        # go to the process's handlers and the server keeps to its level itself (see
        # serve): log_level would set the levels of the process's uvicorn loggers, and
        # access_log=False would empty uvicorn.access's handlers and stop its propagation.
        log_config=LOGGING_CONFIG if own_logging else None,
        log_level=log_level if own_logging else None,
        access_log=not own_logging,
        proxy_headers=False,
        # A stream that somehow stays open must not hold a shutdown for long.
        timeout_graceful_shutdown=2,
    )


def run_in_background(
    port: int = 0,
    *,
    write_key: str | None = None,
    db: str | None = None,
    host: str = "127.0.0.1",
    forward: str | None = None,
    allowed_hosts: Collection[str] = (),
    allow_remote_control: bool = False,
    oauth: OAuthServer | None = None,
    max_events: int | None = None,
    max_bytes: int | None = None,
) -> CollectorHandle:
    """Start a collector in a daemon thread; return once it is listening.

    The options are `create_app`'s. On every address (`host="0.0.0.0"` or
    `"::"`), the handle's URL is this machine's own (127.0.0.1 or [::1]).

    >>> with run_in_background() as collector:                      # doctest: +SKIP
    ...     print(collector.url)
    http://127.0.0.1:54321
    """
    app = create_app(
        write_key=write_key,
        db=db,
        forward=forward,
        allowed_hosts=allowed_hosts,
        allow_remote_control=allow_remote_control,
        oauth=oauth,
        max_events=max_events,
        max_bytes=max_bytes,
    )
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    server = CollectorServer(app, own_logging=False)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="segment-collector", daemon=True
    )
    thread.start()
    deadline = monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or monotonic() > deadline:
            server.stop()
            thread.join(STOP_TIMEOUT_SECONDS)
            sock.close()
            raise RuntimeError(f"the collector did not start on {host}:{bound_port}")
        time.sleep(0.01)

    def stop() -> None:
        server.stop()
        thread.join(STOP_TIMEOUT_SECONDS)
        sock.close()

    return CollectorHandle(local_url(host, bound_port), on_stop=stop, write_key=write_key)
