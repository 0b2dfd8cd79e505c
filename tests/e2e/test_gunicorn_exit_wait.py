"""gunicorn gthread workers with the README's ``worker_exit`` hook stop within one
``shutdown_timeout`` while Segment does not accept their events."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    app_env,
    assert_a_stop_during_an_outage_is_bounded,
    free_port,
    gunicorn_argv,
    load,
    running,
)

pytestmark = pytest.mark.slow

FLASK = "tests.e2e.apps.flask_app:app"
# The README's gunicorn.conf.py: `from segment_core.lifecycle import worker_exit`.
WORKER_EXIT_HOOK = ("--config", "python:tests.e2e.apps.gunicorn_conf")


def test_gthread_workers_with_the_hook_stop_within_one_shutdown_timeout_during_an_outage(
    segment_collector: Any, tmp_path: Path
) -> None:
    # gthread's pool threads may still be alive as the hook runs, so the hook only
    # flushes and atexit shuts down: both share the 6 s. Waiting twice takes over 12 s.
    port = free_port()
    argv = gunicorn_argv(FLASK, port, "--worker-class", "gthread", "--threads", "4")
    argv[-1:-1] = WORKER_EXIT_HOOK
    env = app_env(segment_collector.url, shutdown_timeout=6, **HOLD_UNTIL_EXIT)
    assert_a_stop_during_an_outage_is_bounded(
        segment_collector, argv, port=port, env=env, log_dir=tmp_path, requests=50
    )


@pytest.mark.parametrize("max_retries", [10, 1], ids=["retrying", "out-of-retries"])
def test_a_worker_without_the_hook_stops_within_one_shutdown_timeout_during_an_outage(
    segment_collector: Any, tmp_path: Path, max_retries: int
) -> None:
    # A view's background work runs 4 s past SIGTERM; the interpreter waits for it,
    # then atexit delivers. The stop's delivery began at SIGTERM and failed since (a
    # batch out of retries meanwhile is no answer of the host's): the exit waits only
    # for what is left of its 6 s (4 + 6 = 10 s if it waited again).
    port = free_port()
    argv = gunicorn_argv(FLASK, port)
    options = {**HOLD_UNTIL_EXIT, "shutdown_timeout": 6, "max_retries": max_retries}
    env = app_env(segment_collector.url, **options)
    segment_collector.faults({"status": 503, "seconds": 120})
    try:
        with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
            load(server, 10)
            for n in range(2):  # one per worker, most likely
                answer = requests.get(f"{server.url}/export/{n}?seconds=4", timeout=30)
                assert answer.status_code == 200
            started = time.monotonic()
            assert server.stop(signal.SIGTERM) == 0
            elapsed = time.monotonic() - started
            log = server.log()
    finally:
        segment_collector.clear_faults()
    assert elapsed < 9, f"{elapsed:.1f}s to stop\n{log}"
    # What was not delivered is said: at the exit, or as a batch ran out of retries.
    assert "message(s) undelivered" in log or "giving up on a batch" in log, log
