"""Serve the example apps on real servers (gunicorn, uvicorn), as subprocesses.

Each app runs from its own directory with the command a user would type, on a
free loopback port, with its Segment settings in the environment. A server runs
in its own process group (Ctrl-C in a terminal does not reach it) with its output
in a log file, is stopped with SIGTERM (so it flushes its events) and, whatever
happens, is killed with its workers on the way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = ["EXAMPLES", "Example", "Server", "free_port", "serving"]

HERE = Path(__file__).resolve().parent
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
SETUP_TIMEOUT = 60.0
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Example:
    """One example app and the server that runs it."""

    name: str  # the directory, e.g. "django_shop"
    server: str  # "gunicorn" or "uvicorn"
    target: str  # what the server loads, e.g. "shop_project.wsgi"
    setup: tuple[str, ...] = ()  # a command run once before the server starts

    @property
    def label(self) -> str:
        return f"{self.name} ({self.server})"

    @property
    def directory(self) -> Path:
        return HERE / self.name

    @property
    def write_key(self) -> str:
        """Its own write key, so the collector's events can be told apart per app."""
        return f"demo-{self.name}-{self.server}"

    def command(self, port: int) -> list[str]:
        """The server's command line, as a user would type it (plus the port)."""
        if self.server == "gunicorn":
            # gunicorn.conf.py in the app's directory supplies the rest.
            bind = f"127.0.0.1:{port}"
            return [*_python("gunicorn"), *_gunicorn_extras(), "--bind", bind, self.target]
        return [*_python("uvicorn"), "--host", "127.0.0.1", "--port", str(port), self.target]


EXAMPLES = (
    Example("django_shop", "gunicorn", "shop_project.wsgi", setup=("manage.py", "seed_demo")),
    Example(
        "django_shop", "uvicorn", "shop_project.asgi:application", setup=("manage.py", "seed_demo")
    ),
    Example("flask_blog", "gunicorn", "wsgi:app"),
    Example("fastapi_api", "uvicorn", "main:app"),
)


def free_port() -> int:
    """A loopback port nobody listens on right now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_environment(example: Example, collector_url: str, data_dir: Path) -> dict[str, str]:
    """The app's environment: the collector as Segment, and its data in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENT_", "DJANGO_"))}
    env.update(
        SEGMENT_WRITE_KEY=example.write_key,
        SEGMENT_HOST=collector_url,
        SHOP_DATABASE=str(data_dir / f"{example.write_key}.sqlite3"),
        BLOG_DATABASE=str(data_dir / f"{example.write_key}.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Server:
    """A running example app."""

    example: Example
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, the way a platform stops a server; wait for the exit, return its status."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"{self.example.label} did not stop within {timeout:g}s of SIGTERM"
            ) from None

    def kill(self) -> None:
        """Kill the server's whole process group (workers a dead master left behind too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


@contextlib.contextmanager
def serving(
    example: Example,
    collector_url: str,
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``example`` until the block ends; yield it once it answers its health check.

    ``extra_env`` adds to (or overrides) the app's environment. On the way out the
    server gets SIGTERM (if still running), then its process group is killed. A
    failure while starting raises with the server's log.
    """
    env = {**app_environment(example, collector_url, data_dir), **(extra_env or {})}
    log_path = data_dir / f"{example.write_key}.log"
    if example.setup:
        _run_setup(example, env, log_path)
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            example.command(port),
            cwd=example.directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(example, process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        try:
            if server.running:
                server.stop()
        finally:
            server.kill()


def _run_setup(example: Example, env: dict[str, str], log_path: Path) -> None:
    with log_path.open("ab") as log:
        done = subprocess.run(
            [sys.executable, *example.setup],
            cwd=example.directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=SETUP_TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"{example.label}: {' '.join(example.setup)} failed "
            f"(status {done.returncode}):\n{log_path.read_text(errors='replace')}"
        )


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with requests.Session() as session:
        while True:
            if not server.running:
                raise RuntimeError(
                    f"{server.example.label} exited with status {server.process.returncode} "
                    f"before it was ready:\n{server.log()}"
                )
            with contextlib.suppress(requests.RequestException):
                if session.get(server.url + HEALTH_PATH, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.example.label} was not ready within {READY_TIMEOUT:g}s:\n"
                    f"{server.log()}"
                )
            time.sleep(0.05)


def _python(module: str) -> list[str]:
    """Run ``module`` with this interpreter: the servers of this virtual environment."""
    return [sys.executable, "-m", module]


def _gunicorn_extras() -> list[str]:
    # gunicorn 25.1+ opens a control socket at one path per user: several servers
    # at once (the demo, the tests) would fight over it. None of them needs it.
    import gunicorn.config

    return ["--no-control-socket"] if hasattr(gunicorn.config, "ControlSocketDisable") else []
