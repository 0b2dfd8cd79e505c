"""gunicorn gthread workers with the README's ``worker_exit`` hook stop within one
``shutdown_timeout`` while Segment does not accept their events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    app_env,
    assert_a_stop_during_an_outage_is_bounded,
    free_port,
    gunicorn_argv,
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
