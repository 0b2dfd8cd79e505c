"""Green threads (gevent, eventlet) against the collector: gunicorn's gevent workers, with
and without --preload, and gevent's and eventlet's own WSGI servers stopped by SIGTERM.

Their threads are greenlets of one event loop: a lock made before the worker
monkey-patches is an OS lock, and one greenlet waiting on it stops them all; a
signal handler runs in the event loop itself, where nothing may wait.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    Server,
    app_env,
    assert_all_delivered,
    free_port,
    gunicorn_argv,
    running,
)

pytestmark = pytest.mark.slow

FLASK = "tests.e2e.apps.flask_app:app"
MODULE_CALLS = "tests.e2e.apps.module_calls:app"
# The README's gunicorn.conf.py: `from segment_core.lifecycle import worker_exit`.
WORKER_EXIT_HOOK = ("--config", "python:tests.e2e.apps.gunicorn_conf")
#: A request stuck behind a blocked event loop fails after this, not after gunicorn's
#: 30 s worker timeout.
ANSWER_TIMEOUT = 10.0


def needs(library: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(library) is None, reason=f"{library} is not installed"
    )


def accept_queue(port: int) -> int:
    """Connections waiting to be accepted on the loopback ``port`` (a listening socket's
    receive queue in /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":  # LISTEN
            return int(fields[4].split(":")[1], 16)
    return 0


def first_requests_at_once(server: Server, port: int, n: int) -> set[int]:
    """``GET /item/0`` .. ``/item/<n-1>`` (each a new connection), all waiting to be
    accepted when the one worker resumes: its first tracked calls meet, each in its
    own greenlet. The pids that answered."""
    worker = int(requests.get(server.url + "/health", timeout=ANSWER_TIMEOUT).text)

    def get(i: int) -> int:
        response = requests.get(f"{server.url}/item/{i}", timeout=ANSWER_TIMEOUT)
        assert response.status_code == 200, (i, response.status_code, response.text)
        return int(response.text)

    os.kill(worker, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(n) as pool:
            answers = pool.map(get, range(n))
            deadline = time.monotonic() + ANSWER_TIMEOUT
            while accept_queue(port) < n:
                assert time.monotonic() < deadline, f"{accept_queue(port)} of {n} connected"
                time.sleep(0.01)
            os.kill(worker, signal.SIGCONT)
            return set(answers)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGCONT)


@needs("gevent")
@pytest.mark.parametrize(
    ("app", "options", "spool"),
    [
        # The app and its client loaded in the master; workers patch after the fork.
        pytest.param(FLASK, ("--preload",), False, id="preload-flask"),
        pytest.param(FLASK, ("--preload", *WORKER_EXIT_HOOK), True, id="preload-flask-hook-spool"),
        # The hook's import in the master; each worker builds the module-level client
        # (and with a spool its thread) while its other requests wait for it.
        pytest.param(MODULE_CALLS, WORKER_EXIT_HOOK, True, id="module-calls-hook-spool"),
        pytest.param(
            MODULE_CALLS, ("--preload", *WORKER_EXIT_HOOK), True, id="preload-module-calls-spool"
        ),
    ],
)
def test_gunicorn_gevent_workers_answer_and_deliver_every_event(
    segment_collector: Any, tmp_path: Path, app: str, options: tuple[str, ...], spool: bool
) -> None:
    port = free_port()
    argv = gunicorn_argv(app, port, "--worker-class", "gevent", "--workers", "1", *options)
    settings: dict[str, Any] = dict(HOLD_UNTIL_EXIT)
    if spool:
        settings["spool_dir"] = tmp_path / "spool"
    env = app_env(segment_collector.url, **settings)
    n = 20
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path) as server:
        assert len(first_requests_at_once(server, port, n)) == 1
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    assert_all_delivered(segment_collector, n)
    assert "Traceback" not in log, log


@pytest.mark.parametrize(
    "library", [pytest.param(name, marks=needs(name)) for name in ("gevent", "eventlet")]
)
def test_sigterm_to_a_green_wsgi_server_delivers_then_ends_it_by_sigterm(
    segment_collector: Any, tmp_path: Path, library: str
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "tests.e2e.apps.green_server", library, str(port)]
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    env["PYTHONWARNINGS"] = "ignore"  # eventlet's deprecation, gevent's late ssl patch
    n = 10
    with running(f"{library}-wsgi", argv, port=port, env=env, log_dir=tmp_path) as server:
        assert len(first_requests_at_once(server, port, n)) == 1
        # Held in the buffer: whatever arrives now comes from the SIGTERM handler.
        assert segment_collector.summary()["total"] == 0
        assert server.stop(signal.SIGTERM) == -signal.SIGTERM
        log = server.log()
    assert_all_delivered(segment_collector, n)
    assert "Traceback" not in log, log
