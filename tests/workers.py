"""Run job workers (``celery worker``, ``rq worker``) as real subprocesses.

A worker runs in its own process group with its output in a log file; it is
ready when its log says so. When a test fails inside :func:`running_worker`, the
log is printed; whatever happens, the whole group is killed on the way out.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.servers import STOP_TIMEOUT, spawn_logged

READY_TIMEOUT = 60.0


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.log()):
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) early")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {pattern!r} not in its log after {timeout:g}s")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` to the worker's main process; return its exit status."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not stop within {timeout:g}s") from None


@contextlib.contextmanager
def running_worker(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_dir: Path,
    ready: str,
) -> Iterator[WorkerProcess]:
    """Run ``argv`` from the project's root; yield once ``ready`` (a regex) is in its log."""
    log_path = log_dir / f"{name}.log"
    process = spawn_logged(argv, env, log_path)
    worker = WorkerProcess(name, process, log_path)
    try:
        worker.wait_for_log(ready)
        yield worker
    except BaseException:
        print(f"----- {name}: {' '.join(argv)}\n{worker.log()}----- end of {name} log")
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def poll(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Wait until ``condition()`` is true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g}s")
        time.sleep(0.05)


def celery_argv(app: str, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        *options,
    ]


#: What ``celery worker`` logs once it consumes.
CELERY_READY = r"ready\."
