"""Servers and load for ``benchmarks/adapters.py``: start, load, measure, stop.

A server is one framework's hello-world app with one integration, served by a
real server with one worker (gunicorn's sync worker, or uvicorn), on a free
loopback port. ``load`` runs the project's load generator
(``benchmarks/loadgen.py``) against it and samples the CPU time of the process
that answers (all its threads: request handling and the integration's sender).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._peers import PAGE  # noqa: E402
from benchmarks.loadgen import run_load  # noqa: E402

#: Every server of a run starts at once, on 2 busy cores: be patient.
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 20.0
#: After a run, the CPU a server spends finishing its sends still counts.
SETTLE_SECONDS = 0.3


@dataclass
class Run:
    per_second: float
    requests: int
    errors: int
    #: CPU seconds the server's worker (request handling and sender threads) spent.
    worker_cpu: float

    @property
    def cpu_per_request_us(self) -> float:
        return self.worker_cpu / self.requests * 1e6 if self.requests else 0.0


@dataclass
class Server:
    framework: str
    variant: str
    #: The receiver's path prefix this server delivers under.
    source: str
    process: subprocess.Popen[str]
    url: str = ""
    #: The process that answers requests, whose CPU time ``load`` samples.
    worker: Any = None
    #: Requests answered (load generator and readiness probe): events owed.
    served: int = 0
    errors: int = 0
    runs: list[Run] = field(default_factory=list)


def _env(variant: str, collector_url: str) -> dict[str, str]:
    # BENCH_SEGMENT_OPTIONS (JSON), if set, passes through to the segment-web servers.
    return {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_COLLECTOR": collector_url,
        # $BENCH_PYTHONPATH first: to measure another checkout's packages (before/after).
        "PYTHONPATH": os.pathsep.join(
            filter(None, (os.environ.get("BENCH_PYTHONPATH"), str(ROOT)))
        ),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def _cwd() -> str:
    # ``python -m`` puts the working directory first on the path.
    return os.environ.get("BENCH_PYTHONPATH") or str(ROOT)


def start_gunicorn(framework: str, variant: str, app: str, receiver_url: str) -> Server:
    """``gunicorn -w 1 --threads 1`` (sync) serving ``app`` (``module:factory()``)."""
    source = f"{framework}-{variant}"
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers=1", "--threads=1", "--worker-class=sync",
        "--bind=127.0.0.1:0", "--backlog=2048", "--log-level=info",
        "--graceful-timeout=15", "--timeout=120",
        app,
    ]  # fmt: skip
    env = _env(variant, f"{receiver_url}/{source}")
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=_cwd(), env=env)
    return Server(framework, variant, source, process)


def start_uvicorn(framework: str, variant: str, factory: str, receiver_url: str) -> Server:
    """One uvicorn process (h11, asyncio, no access log) serving ``factory``."""
    source = f"{framework}-{variant}"
    port = _free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory,
        "--host=127.0.0.1", f"--port={port}", "--workers=1", "--http=h11",
        "--loop=asyncio", "--lifespan=on", "--no-access-log", "--log-level=warning",
        "--backlog=2048",
    ]  # fmt: skip
    env = _env(variant, f"{receiver_url}/{source}")
    process = subprocess.Popen(command, cwd=_cwd(), env=env, text=True)
    server = Server(framework, variant, source, process)
    server.url = f"http://127.0.0.1:{port}"
    return server


def wait_started(server: Server) -> None:
    """Wait until ``server`` answers its page (one request: it owes one event)."""
    process = server.process
    if not server.url:  # gunicorn: the arbiter logs the port it bound
        server.url = _wait_listening(process)
        server.worker = _gunicorn_worker(process)
    else:
        server.worker = psutil.Process(process.pid)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{server.source}: the server exited with {process.returncode}")
        try:
            # A long timeout: a probe given up on could still be answered (and tracked).
            with urlopen(server.url + PAGE, timeout=START_TIMEOUT_SECONDS) as response:
                response.read()
                if response.status == 200:
                    server.served += 1
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # polling a starting server, bounded by the deadline


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
        if match:
            # Keep reading its log so that a full pipe never blocks the server.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return match[1]
    raise RuntimeError("gunicorn did not start")


def _gunicorn_worker(arbiter: subprocess.Popen[str]) -> Any:
    """gunicorn's one worker process (the arbiter's child)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        children = psutil.Process(arbiter.pid).children()
        if children or time.monotonic() > deadline:
            return children[0]
        time.sleep(0.05)  # the arbiter is still forking it, bounded by the deadline


def load(
    server: Server, seconds: float, connections: int, cookie: str = "", *, browser: bool = False
) -> Run:
    """One bounded run of the load generator against ``server``; recorded on it."""
    before = server.worker.cpu_times()
    result = asyncio.run(
        run_load(
            server.url + PAGE,
            connections=connections,
            requests=10**9,
            duration=seconds,
            cookie=cookie,
            browser=browser,
        )
    )
    time.sleep(SETTLE_SECONDS)  # the sender finishes what this run started
    after = server.worker.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    run = Run(result.per_second, result.requests, result.errors, cpu)
    server.served += result.requests
    server.errors += result.errors
    return run


def stop_all(servers: list[Server]) -> None:
    """SIGTERM every server at once, then wait for each (kill after the timeout).

    SIGTERM is a graceful stop: gunicorn's workers run ``atexit``, uvicorn shuts
    the app down (lifespan) and exits; either way each integration delivers what
    it holds.
    """
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for server in servers:
        try:
            server.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
