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

__all__ = [
    "EXAMPLES",
    "Example",
    "JobWorker",
    "Server",
    "free_port",
    "loopback_session",
    "serving",
]

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
    worker: tuple[str, ...] = ()  # a job worker run beside it, when there is a broker

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
        # --lifespan on: a setting the app refuses stops the server as it starts.
        address = ["--host", "127.0.0.1", "--port", str(port)]
        return [*_python("uvicorn"), "--lifespan", "on", *address, self.target]


#: The shop's Celery worker: it sends the order confirmation.
SHOP_WORKER = (
    *("celery", "-A", "shop_project", "worker", "--pool", "prefork", "--concurrency", "1"),
    *("--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO"),
)
WORKER_READY = "ready."

EXAMPLES = (
    Example(
        "django_shop",
        "gunicorn",
        "shop_project.wsgi",
        setup=("manage.py", "seed_demo"),
        worker=SHOP_WORKER,
    ),
    Example(
        "django_shop",
        "uvicorn",
        "shop_project.asgi:application",
        setup=("manage.py", "seed_demo"),
        worker=SHOP_WORKER,
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


def loopback_session() -> requests.Session:
    """A session for the apps and the collector on this machine: never through a proxy.

    A shell's ``HTTP_PROXY`` is for the network; the proxy cannot reach our loopback.
    """
    session = requests.Session()
    session.trust_env = False
    return session


def app_environment(
    example: Example, collector_url: str, data_dir: Path, broker_url: str | None = None
) -> dict[str, str]:
    """The app's environment: the collector as Segment, and its data in ``data_dir``."""
    # The caller's settings for these apps (SHOP_DEMO_PASSWORD, ...) would not be the
    # ones the scripted visit uses.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEGMENT_", "DJANGO_", "SHOP_", "BLOG_"))
    }
    if broker_url:
        env["SHOP_CELERY_BROKER"] = broker_url
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
    #: The job worker beside the server (the shop's Celery worker), if one runs.
    worker: JobWorker | None = None

    def log(self) -> str:
        worker = "" if self.worker is None else self.worker.log()
        return self.log_path.read_text(errors="replace") + worker

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, the way a platform stops a server; wait for the exit, return its status.

        Then the job worker, once it has taken every job the server published: its
        warm shutdown finishes the running ones and delivers their events.
        """
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"{self.example.label} did not stop within {timeout:g}s of SIGTERM"
            ) from None
        if self.worker is not None:
            self.worker.stop(timeout)
        return status

    def kill(self) -> None:
        """Kill the server's whole process group (workers a dead master left behind too)."""
        for process in (self.process, *(() if self.worker is None else (self.worker.process,))):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)


@dataclass
class JobWorker:
    """A Celery worker beside an example app, on the broker at ``broker_url``."""

    process: subprocess.Popen[bytes]
    log_path: Path
    broker_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait until the broker's queue is empty, then SIGTERM (a warm shutdown)."""
        import redis

        deadline = time.monotonic() + timeout
        try:
            with redis.Redis.from_url(self.broker_url) as broker:
                while broker.llen("celery") and time.monotonic() < deadline:
                    time.sleep(0.05)
        except redis.RedisError:  # the broker is gone: nothing more can come
            pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the job worker did not stop within {timeout:g}s") from None


@contextlib.contextmanager
def serving(
    example: Example,
    collector_url: str,
    data_dir: Path,
    broker_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``example`` until the block ends; yield it once it answers its health check.

    With ``broker_url`` (Redis), the example's job worker runs beside it.
    ``extra_env`` adds to (or overrides) the app's environment. On the way out the
    server gets SIGTERM (if still running), then its process group is killed. A
    failure while starting raises with the server's log.
    """
    env = {
        **app_environment(example, collector_url, data_dir, broker_url),
        **(extra_env or {}),
    }
    log_path = data_dir / f"{example.write_key}.log"
    if example.setup:
        _run_setup(example, env, log_path)
    worker = None
    if example.worker and broker_url:
        log = data_dir / f"{example.write_key}-worker.log"
        worker = _start_worker(example, env, log, broker_url)
    port = free_port()
    process = _spawn(example.command(port), example.directory, env, log_path)
    server = Server(example, process, f"http://127.0.0.1:{port}", log_path, worker)
    try:
        if worker is not None:
            _wait_for_worker(server, worker)
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


def _spawn(
    argv: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group (Ctrl-C does not reach it), logging to a file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _start_worker(
    example: Example, env: dict[str, str], log_path: Path, broker_url: str
) -> JobWorker:
    argv = [sys.executable, "-m", *example.worker]
    return JobWorker(_spawn(argv, example.directory, env, log_path), log_path, broker_url)


def _wait_for_worker(server: Server, worker: JobWorker) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while WORKER_READY not in worker.log():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.example.label}: its job worker did not start:\n{worker.log()}"
            )
        time.sleep(0.05)


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with loopback_session() as session:
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
