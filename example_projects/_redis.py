"""A Redis server of our own, the broker of the Celery and RQ workers: Debian's ``redis-server``.

Started on a free loopback port with a temporary directory and no persistence,
and stopped at the end; the system's Redis service, if any, is left alone
(``scripts/install-system-deps`` installs the package). The demo and the tests
use it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import redis

from example_projects._servers import free_port

__all__ = ["database_url", "redis_server_binary", "running_redis"]

START_TIMEOUT = 20.0
#: redis-server's default number of databases (``databases 16``).
DATABASES = 16


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def database_url(url: str, number: int) -> str:
    """``url`` (``redis://host:port/0``) naming database ``number`` of the same server.

    Job workers on different databases never take each other's jobs: each
    database has its own queues.
    """
    if not 0 <= number < DATABASES:
        raise ValueError(f"a Redis database number is 0 to {DATABASES - 1}, got {number}")
    return urlsplit(url)._replace(path=f"/{number}").geturl()


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[str]:
    """Run ``redis-server`` until the block ends; yield its URL (``redis://127.0.0.1:<port>/0``)."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/install-system-deps")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(directory), "--daemonize", "no", "--protected-mode", "yes"]
    log = (directory / "redis.log").open("wb")
    # Its own session, as the apps': Ctrl-C at the terminal must not stop the broker
    # before the job workers have drained it.
    process = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        connection = redis.Redis.from_url(url)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if connection.ping():
                    break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "redis-server did not start:\n" + (directory / "redis.log").read_text()
                    ) from None
                time.sleep(0.05)
        connection.close()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
