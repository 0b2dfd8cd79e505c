"""Start real servers (gunicorn, uvicorn, uWSGI) as subprocesses, load them, stop them.

A server runs in its own process group with its output in a log file. When a test
fails inside :func:`running`, the log is printed (pytest shows it with the
failure); whatever happens, the whole process group is killed on the way out.

Every test app answers ``GET /health`` and ``GET /item/<n>`` with its pid; an item
view sends an automatic page call (path ``/item/<n>``) and an explicit
``"Item Viewed"`` track with ``{"n": n, "pid": ...}``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "e2e-write-key"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
ITEM_EVENT = "Item Viewed"
#: Events wait in the client until shutdown: what arrives, the exit path delivered.
HOLD_UNTIL_EXIT = {"flush_at": 2500, "flush_interval": 3600}


def free_port() -> int:
    """A port nobody listens on right now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_env(collector_url: str, **options: Any) -> dict[str, str]:
    """The environment of a test app: the collector, and ``SEGMENT_<OPTION>`` values."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SEGMENT_", "DJANGO_", "PYTEST_"))
    }
    env["SEGMENT_WRITE_KEY"] = WRITE_KEY
    env["SEGMENT_HOST"] = collector_url
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in options.items():
        env["SEGMENT_" + name.upper()] = str(int(value) if isinstance(value, bool) else value)
    return env


@dataclass
class Server:
    """A server started by :func:`running`."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` to the server's main process only; return its exit status."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not stop within {timeout:g}s of {signal.Signals(sig).name}"
            ) from None

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = READY_TIMEOUT) -> str:
        """Wait until ``pattern`` (a regex) occurs ``count`` times in the log; return the log."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if len(re.findall(pattern, log)) >= count:
                return log
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {pattern!r} not seen {count} time(s)")
            time.sleep(0.05)

    def wait_until_ready(self, workers: int = 1, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/health`` on new connections until ``workers`` distinct pids answered."""
        deadline = time.monotonic() + timeout
        pids: set[str] = set()
        while len(pids) < workers:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with status {self.process.returncode} before it was ready"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {len(pids)} of {workers} worker(s) ready after {timeout:g}s"
                )
            try:
                response = requests.get(self.url + "/health", timeout=2)
                if response.status_code == 200:
                    pids.add(response.text)
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.05)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def spawn_logged(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` from the project's root, in its own process group (killed as
    one at the end), with its output in ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def running(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    log_dir: Path,
    workers: int = 1,
) -> Iterator[Server]:
    """Run ``argv``; yield the server once ``workers`` workers answer; kill what is left."""
    log_path = log_dir / f"{name}.log"
    process = spawn_logged(argv, env, log_path)
    server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_until_ready(workers)
        yield server
    except BaseException:
        # pytest shows a failed test's captured output: the server's side of the story.
        print(f"----- {name}: {' '.join(argv)}\n{server.log()}----- end of {name} log")
        raise
    finally:
        # Workers orphaned by a master that died must not outlive the test.
        server._kill_group()


def load(server: Server, n: int, *, first: int = 0, concurrency: int = 4) -> Counter[int]:
    """``GET /item/<first>`` .. ``/item/<n-1>`` from ``concurrency`` clients; requests per pid."""

    def client(start: int) -> Counter[int]:
        served: Counter[int] = Counter()
        for i in range(first + start, n, concurrency):
            # A new connection per request (no session): spreads the requests over the
            # workers, and uWSGI's http-socket closes connections without saying so.
            response = requests.get(f"{server.url}/item/{i}", timeout=30)
            assert response.status_code == 200, (i, response.status_code, response.text)
            served[int(response.text)] += 1
        return served

    total: Counter[int] = Counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for served in pool.map(client, range(concurrency)):
            total.update(served)
    return total


def stop_under_load(
    server: Server, *, sig: int = signal.SIGTERM, warmup: int = 40, concurrency: int = 4
) -> tuple[set[int], int, int]:
    """Send ``sig`` while ``concurrency`` clients keep requesting new items.

    Returns the items answered 200, how many items were requested in all, and the
    server's exit status. Requests refused or cut while the server stops are expected.
    """
    numbers = itertools.count()
    answered: set[int] = set()
    lock = threading.Lock()
    stopped = threading.Event()

    def client() -> None:
        while not stopped.is_set():
            i = next(numbers)
            try:
                response = requests.get(f"{server.url}/item/{i}", timeout=30)
            except requests.RequestException:
                stopped.wait(0.01)  # refused or reset: the server is going away
                continue
            if response.status_code == 200:
                with lock:
                    answered.add(i)

    with ThreadPoolExecutor(concurrency) as pool:
        clients = [pool.submit(client) for _ in range(concurrency)]
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while len(answered) < warmup:
                assert time.monotonic() < deadline, f"{len(answered)} answers before the stop"
                assert not any(c.done() for c in clients), [c.result() for c in clients]
                assert server.process.poll() is None, f"{server.name} exited under load"
                stopped.wait(0.01)
            status = server.stop(sig)
        finally:
            stopped.set()
        for future in clients:
            future.result()
    return answered, next(numbers), status


def assert_delivered_for(collector: Any, answered: set[int], requested: int) -> None:
    """Every answered item has its page call and its track, once; no item beyond those
    requested; an item processed but not answered (cut by the stop) has both or neither."""
    events = collector.wait_for(2 * len(answered), timeout=20)
    summary = collector.summary()
    assert summary["bad"] == 0, [e["reasons"] for e in events if e["status"] != "good"][:5]
    assert summary["duplicates"] == 0, summary
    messages = [event["message"] for event in events]
    pages = Counter(
        int(m["properties"]["path"].rsplit("/", 1)[1]) for m in messages if m["type"] == "page"
    )
    tracks = Counter(
        m["properties"]["n"]
        for m in messages
        if m["type"] == "track" and m.get("event") == ITEM_EVENT
    )
    assert all(count == 1 for count in (*pages.values(), *tracks.values())), (pages, tracks)
    assert answered <= set(tracks), sorted(answered - set(tracks))
    assert answered <= set(pages), sorted(answered - set(pages))
    assert set(tracks) <= set(range(requested))
    assert set(pages) == set(tracks), sorted(set(pages) ^ set(tracks))


def assert_all_delivered(collector: Any, n: int, *, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Exactly one page call and one "Item Viewed" per item 0..n-1: all good, none twice."""
    events = collector.wait_for(2 * n, timeout=timeout)
    summary = collector.summary()
    assert summary["bad"] == 0, [e["reasons"] for e in events if e["status"] != "good"][:5]
    assert summary["duplicates"] == 0, summary
    messages = [event["message"] for event in events]
    assert len({m["messageId"] for m in messages}) == len(messages)
    pages = sorted(m["properties"]["path"] for m in messages if m["type"] == "page")
    tracks = sorted(
        m["properties"]["n"]
        for m in messages
        if m["type"] == "track" and m.get("event") == ITEM_EVENT
    )
    assert pages == sorted(f"/item/{i}" for i in range(n)), Counter(pages).most_common(3)
    assert tracks == list(range(n)), Counter(tracks).most_common(3)
    assert len(messages) == 2 * n, Counter(m["type"] for m in messages)
    return messages


def assert_a_stop_during_an_outage_is_bounded(
    collector: Any,
    argv: list[str],
    *,
    port: int,
    env: dict[str, str],
    log_dir: Path,
    requests: int,
    within: float = 10.0,
) -> None:
    """Serve ``requests`` page views while the collector refuses everything, then stop
    the gunicorn master with SIGTERM: it exits cleanly within ``within`` seconds, and
    its workers log what they could not deliver."""
    collector.faults({"status": 503, "seconds": 120})
    try:
        with running("gunicorn", argv, port=port, env=env, log_dir=log_dir, workers=2) as server:
            load(server, requests)
            started = time.monotonic()
            assert server.stop(signal.SIGTERM) == 0
            elapsed = time.monotonic() - started
            log = server.log()
        summary = collector.summary()
    finally:
        collector.clear_faults()
    assert elapsed < within, f"{elapsed:.1f}s to stop\n{log}"
    assert summary["total"] == 0, summary
    assert summary["requests"]["faulted"] > 0, summary
    assert "message(s) undelivered" in log, log


def gunicorn_argv(app: str, port: int, *options: str) -> list[str]:
    """gunicorn with 2 workers on ``port`` (and no control socket, shared per user in 27+)."""
    import gunicorn.config

    if hasattr(gunicorn.config, "ControlSocketDisable"):
        options = ("--no-control-socket", *options)
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--graceful-timeout",
        "20",
        *options,
        app,
    ]


def uvicorn_argv(app: str, port: int, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        *options,
        app,
    ]


def uwsgi_binary() -> str | None:
    """The ``uwsgi`` of this virtual environment (or on PATH); None when not installed."""
    candidate = Path(sys.executable).parent / "uwsgi"
    if candidate.exists():
        return str(candidate)
    return shutil.which("uwsgi")


def uwsgi_argv(binary: str, app: str, port: int, *options: str) -> list[str]:
    """uWSGI with a master and 2 worker processes speaking HTTP on ``port``."""
    return [
        binary,
        "--http-socket",
        f"127.0.0.1:{port}",
        "--master",
        "--processes",
        "2",
        "--module",
        app,
        "--chdir",
        str(ROOT),
        "--virtualenv",
        sys.prefix,
        "--need-app",
        "--disable-logging",  # no line per request; errors and app output still logged
        *options,
    ]
