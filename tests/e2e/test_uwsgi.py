"""uWSGI (master + 2 processes): a stop or a reload delivers what the workers accepted.

uWSGI 2.0's signals: SIGINT and SIGQUIT (and SIGTERM with ``--die-on-term``) stop
the instance *brutally* (``kill_them_all``): a worker that is handling a request at
that moment exits without running any atexit hook (uWSGI skips them for busy
workers), so the events it held are lost. Without ``--die-on-term`` SIGTERM is a
reload. The graceful stop is ``gracefully_kill_them_all``, e.g. on SIGTERM with
``--hook-master-start "unix_signal:15 gracefully_kill_them_all"``; SIGHUP is the
graceful reload.

A worker delivers through ``uwsgi.atexit`` (chained by segment_core), which uWSGI
calls as the worker exits, before ``Py_Finalize`` runs Python's own ``atexit``;
``--skip-atexit-teardown`` skips the latter, so a test with it shows that the
``uwsgi.atexit`` chain alone is enough.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    app_env,
    assert_all_delivered,
    assert_delivered_for,
    free_port,
    load,
    running,
    stop_under_load,
    uwsgi_argv,
    uwsgi_binary,
)

N = 200
FLASK = "tests.e2e.apps.flask_app:app"
DJANGO = "tests.e2e.apps.django_site.wsgi:application"
UWSGI = uwsgi_binary()
# segment_core.lifecycle's warning, and what uWSGI itself logs about Python threads.
THREADS_WARNING = "uWSGI runs without --enable-threads"
UWSGI_THREADS_ON = "python threads support enabled"
UWSGI_THREADS_OFF = "Python threads support is disabled"
GRACEFUL_SIGTERM = ("--hook-master-start", "unix_signal:15 gracefully_kill_them_all")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        UWSGI is None,
        reason="uWSGI is not installed (the dev extra installs it; building it needs a C compiler)",
    ),
]


def uwsgi(app: str, port: int, *options: str) -> list[str]:
    assert UWSGI is not None
    return uwsgi_argv(UWSGI, app, port, *options)


@pytest.mark.parametrize(
    ("app", "options", "stop_signal"),
    [
        pytest.param(FLASK, ["--die-on-term"], signal.SIGTERM, id="flask-die-on-term-SIGTERM"),
        pytest.param(
            DJANGO, ["--skip-atexit-teardown"], signal.SIGINT, id="django-SIGINT-uwsgi-atexit-only"
        ),
    ],
)
def test_stop_of_idle_workers_delivers_every_event_once(
    segment_collector: Any,
    tmp_path: Path,
    app: str,
    options: list[str],
    stop_signal: int,
) -> None:
    """The brutal stops deliver too, as long as no worker is busy with a request."""
    port = free_port()
    argv = uwsgi(app, port, "--enable-threads", *options)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        served = load(server, N)
        assert segment_collector.summary()["total"] == 0
        assert server.stop(stop_signal) == 0
        log = server.log()
    messages = assert_all_delivered(segment_collector, N)
    assert {m["properties"]["pid"] for m in messages if m["type"] == "track"} == set(served)
    assert THREADS_WARNING not in log
    assert "Traceback" not in log


def test_graceful_stop_during_traffic_delivers_every_answered_request(
    segment_collector: Any, tmp_path: Path
) -> None:
    port = free_port()
    argv = uwsgi(FLASK, port, "--enable-threads", *GRACEFUL_SIGTERM)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        answered, requested, status = stop_under_load(server, sig=signal.SIGTERM)
        assert status == 0
    assert_delivered_for(segment_collector, answered, requested)


def test_graceful_reload_loses_nothing(segment_collector: Any, tmp_path: Path) -> None:
    port = free_port()
    argv = uwsgi(FLASK, port, "--enable-threads")
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        before = load(server, N // 2)
        server.process.send_signal(signal.SIGHUP)
        # The old workers deliver as they exit; the new ones start with empty buffers.
        segment_collector.wait_for(N, timeout=20)
        server.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
        server.wait_until_ready(workers=2)
        after = load(server, N, first=N // 2)
        assert not set(before) & set(after), (before, after)
        assert server.stop(signal.SIGINT) == 0
    assert_all_delivered(segment_collector, N)


def test_without_enable_threads_events_are_delivered_at_worker_exit(
    segment_collector: Any, tmp_path: Path
) -> None:
    """README: "without it the client warns, and events wait until the next request or
    the worker's exit"; the worker's exit delivers them."""
    port = free_port()
    argv = uwsgi(FLASK, port, "--die-on-term")
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        load(server, N)
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    assert_all_delivered(segment_collector, N)
    if UWSGI_THREADS_OFF in log:
        assert THREADS_WARNING in log


def test_the_threads_warning_appears_only_when_threads_do_not_run(
    segment_collector: Any, tmp_path: Path
) -> None:
    port = free_port()
    argv = uwsgi(FLASK, port, "--die-on-term")
    env = app_env(segment_collector.url, flush_at=2500, flush_interval=0.2)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        if UWSGI_THREADS_OFF in server.log():
            pytest.skip("this uWSGI really runs without Python threads")
        load(server, N)
        # No more requests: only a running sender thread can deliver these now.
        segment_collector.wait_for(2 * N, timeout=10)
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    assert UWSGI_THREADS_ON in log
    assert THREADS_WARNING not in log
