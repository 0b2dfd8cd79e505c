"""gunicorn (sync and gthread workers, with and without --preload) against the collector.

Nothing accepted is lost when the master gets SIGTERM, when workers are recycled
by --max-requests, or when the collector fails for a while; nothing is sent twice.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from segment_core import Client
from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    WRITE_KEY,
    app_env,
    assert_a_stop_during_an_outage_is_bounded,
    assert_all_delivered,
    assert_delivered_for,
    free_port,
    gunicorn_argv,
    load,
    running,
    stop_under_load,
)

pytestmark = pytest.mark.slow

N = 200
FLASK = "tests.e2e.apps.flask_app:app"
DJANGO = "tests.e2e.apps.django_site.wsgi:application"
PLAIN = "tests.e2e.apps.plain_wsgi:app"
# The README's gunicorn.conf.py: `from segment_core.lifecycle import worker_exit`.
WORKER_EXIT_HOOK = ("--config", "python:tests.e2e.apps.gunicorn_conf")


@pytest.mark.parametrize(
    ("worker_class", "preload", "app", "config"),
    [
        pytest.param("sync", False, FLASK, (), id="sync-flask"),
        pytest.param("sync", True, DJANGO, WORKER_EXIT_HOOK, id="sync-preload-django-hook"),
        pytest.param("gthread", False, DJANGO, (), id="gthread-django"),
        pytest.param("gthread", True, FLASK, WORKER_EXIT_HOOK, id="gthread-preload-flask-hook"),
    ],
)
def test_sigterm_to_the_master_delivers_every_event_once(
    segment_collector: Any,
    tmp_path: Path,
    worker_class: str,
    preload: bool,
    app: str,
    config: tuple[str, ...],
) -> None:
    port = free_port()
    options = ["--worker-class", worker_class, *config]
    if worker_class == "gthread":
        options += ["--threads", "4"]
    if preload:
        options.append("--preload")
    argv = gunicorn_argv(app, port, *options)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        served = load(server, N)
        if worker_class == "sync":  # one request at a time each: both must have served
            assert len(served) == 2, served
        # Held in the workers' buffers: whatever arrives now comes from the exit path.
        assert segment_collector.summary()["total"] == 0
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    messages = assert_all_delivered(segment_collector, N)
    assert {m["properties"]["pid"] for m in messages if m["type"] == "track"} == set(served)
    assert "Traceback" not in log


def _exited(served: dict[int, int], *, keep: int, timeout: float) -> list[int]:
    """The workers of ``served`` that exited, once all but ``keep`` of them have."""
    deadline = time.monotonic() + timeout
    while True:
        gone = [pid for pid in served if not Path(f"/proc/{pid}").exists()]
        if len(gone) >= len(served) - keep or time.monotonic() > deadline:
            return gone
        time.sleep(0.1)


def test_max_requests_recycling_loses_nothing(segment_collector: Any, tmp_path: Path) -> None:
    port = free_port()
    max_requests = 25
    argv = gunicorn_argv(
        PLAIN,
        port,
        "--preload",  # every new worker forks from a master that holds a client
        "--max-requests",
        str(max_requests),
        "--max-requests-jitter",
        "0",
    )
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        served = load(server, N)
        assert max(served.values()) <= max_requests, served
        # Each recycled worker delivered its events as it exited, the master still up.
        # Recycled: every worker but the two serving now (the first ones also answered
        # the readiness probes, which count towards --max-requests).
        recycled = _exited(served, keep=2, timeout=20)
        assert len(recycled) >= N // max_requests - 2, served
        events = 2 * sum(served[pid] for pid in recycled)  # a page and a track each
        segment_collector.wait_for(events, timeout=20)
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    assert_all_delivered(segment_collector, N)
    assert log.count("Autorestarting worker after current request.") >= len(recycled)
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("worker_class", "preload"),
    [("sync", False), ("gthread", True)],
    ids=["sync", "gthread-preload"],
)
def test_workers_recycled_during_an_outage_leave_their_events_to_the_spool_without_the_hook(
    segment_collector: Any, tmp_path: Path, worker_class: str, preload: bool
) -> None:
    """No ``worker_exit`` hook in gunicorn.conf.py: the exit sees the recycle all the
    same. Each recycled worker would hold its slot for ``shutdown_timeout`` (60 s)
    while Segment answers 503, and with both held every request would wait."""
    port = free_port()
    options = ["--worker-class", worker_class, "--max-requests", "10"]
    options += ["--max-requests-jitter", "0", *(["--threads", "2"] if preload else [])]
    argv = gunicorn_argv(FLASK, port, *options, *(["--preload"] if preload else []))
    spool = tmp_path / "spool"
    env = app_env(segment_collector.url, shutdown_timeout=60, spool_dir=spool)
    n = 55  # not a multiple of 10: a worker that served requests is alive at the stop
    segment_collector.faults({"status": 503, "seconds": 600})
    try:
        with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
            served = load(server, n, concurrency=2)  # each request within 30 s
            assert len(served) >= 5, served  # workers were recycled
            assert segment_collector.summary()["requests"]["faulted"] > 0
            segment_collector.clear_faults()
            assert server.stop(signal.SIGTERM) == 0
            log = server.log()
    finally:
        segment_collector.clear_faults()
    assert "stay in the spool" in log
    # The last workers deliver what the recycled ones left, unless one of those was
    # still leaving as they looked: that stays on disk for the next process.
    deliver_what_the_spool_holds(segment_collector.url, spool)
    assert_all_delivered(segment_collector, n, timeout=60)


def deliver_what_the_spool_holds(collector_url: str, spool: Path) -> None:
    """What the next deploy's first process does with the same write key and host."""
    client = Client(WRITE_KEY, host=collector_url, spool_dir=spool)
    assert client.shutdown()


def test_collector_outage_during_load_delivers_everything_once_it_recovers(
    segment_collector: Any, tmp_path: Path
) -> None:
    port = free_port()
    argv = gunicorn_argv(FLASK, port, "--worker-class", "sync")
    env = app_env(
        segment_collector.url,
        flush_at=10,
        flush_interval=0.05,
        retry_backoff_min=0.05,
        retry_backoff_max=0.5,
        max_retries=100,
    )
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        segment_collector.faults({"status": 503, "seconds": 5})
        load(server, N)
        # Delivered by the running workers once the collector answers again.
        segment_collector.wait_for(2 * N, timeout=30)
        summary = segment_collector.summary()
        assert summary["requests"]["faulted"] > 0, summary
        assert summary["pending_faults"] == 0, summary
        assert server.stop(signal.SIGTERM) == 0
    assert_all_delivered(segment_collector, N)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_sigterm_during_traffic_delivers_every_answered_request(
    segment_collector: Any, tmp_path: Path, worker_class: str
) -> None:
    port = free_port()
    threads = ["--threads", "4"] if worker_class == "gthread" else []
    argv = gunicorn_argv(FLASK, port, "--worker-class", worker_class, *threads)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        answered, requested, status = stop_under_load(server)
        assert status == 0
    assert_delivered_for(segment_collector, answered, requested)


def test_hup_reload_loses_nothing(segment_collector: Any, tmp_path: Path) -> None:
    port = free_port()
    argv = gunicorn_argv(DJANGO, port, "--preload")
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        before = load(server, N // 2)
        server.process.send_signal(signal.SIGHUP)  # new workers, old ones stopped gracefully
        segment_collector.wait_for(N, timeout=20)  # what the old workers held
        server.wait_until_ready(workers=2)
        after = load(server, N, first=N // 2)
        assert not set(before) & set(after), (before, after)
        assert server.stop(signal.SIGTERM) == 0
    assert_all_delivered(segment_collector, N)


def test_shutdown_is_bounded_when_the_collector_stays_down(
    segment_collector: Any, tmp_path: Path
) -> None:
    """shutdown_timeout bounds the exit flush: a worker never hangs on a dead collector."""
    port = free_port()
    argv = gunicorn_argv(FLASK, port, "--worker-class", "sync")
    env = app_env(
        segment_collector.url,
        flush_at=1,
        shutdown_timeout=1,
        retry_backoff_min=0.05,
        retry_backoff_max=0.2,
        max_retries=1000,
    )
    assert_a_stop_during_an_outage_is_bounded(
        segment_collector, argv, port=port, env=env, log_dir=tmp_path, requests=20
    )


LINGERING = "tests.e2e.apps.flask_lingering:app"
LAZY = "tests.e2e.apps.lazy_wsgi:app"


@pytest.mark.parametrize(
    ("worker_class", "preload", "app"),
    [
        pytest.param("gthread", False, LINGERING, id="gthread"),
        pytest.param("sync", True, LINGERING, id="sync-preload"),
        # The library first imported on a request's thread, not the main one.
        pytest.param("gthread", False, LAZY, id="gthread-imported-by-a-request"),
        pytest.param("gevent", False, LAZY, id="gevent-imported-by-a-request"),
    ],
)
def test_a_graceful_stop_delivers_what_finished_requests_sent_while_one_still_runs(
    segment_collector: Any, tmp_path: Path, worker_class: str, preload: bool, app: str
) -> None:
    """gunicorn kills a worker whose request outlasts ``graceful_timeout``: what the
    requests finished before sent is delivered as the stop begins, not at the exit."""
    port = free_port()
    release = tmp_path / "release"
    options = ["--worker-class", worker_class, "--workers", "1"]
    options += ["--threads", "4"] if worker_class == "gthread" else []
    options += ["--preload"] if preload else []
    argv = gunicorn_argv(app, port, *options)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    env["E2E_RELEASE_FILE"] = str(release)
    n = 20
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=1) as server:
        load(server, n - 1)
        lingering = requests.get(f"{server.url}/item/{n - 1}", params={"linger": 1}, timeout=30)
        assert lingering.status_code == 200, lingering.text
        assert segment_collector.summary()["total"] == 0  # held in the worker's buffer
        server.process.send_signal(signal.SIGTERM)
        # The lingering request still runs: only the stop's start can have sent these.
        segment_collector.wait_for(2 * (n - 1), timeout=10)
        assert Path(f"/proc/{lingering.text}").exists()
        release.touch()
        assert server.process.wait(30) == 0
    assert_all_delivered(segment_collector, n)
