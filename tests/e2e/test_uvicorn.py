"""uvicorn (and gunicorn's UvicornWorker): SIGTERM -> lifespan shutdown -> SegmentMiddleware
flushes -> everything delivered.

The apps hold events until shutdown and report (``ShutdownReport``) what their
client had delivered at the moment the server heard "lifespan shutdown complete":
the flush happened there, not in a later ``atexit``. A Django project served over
ASGI with only segment_django's middleware has no such flush (see the xfail).
"""

from __future__ import annotations

import importlib.util
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.apps.shutdown_report import REPORT_PREFIX
from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    app_env,
    assert_all_delivered,
    assert_delivered_for,
    free_port,
    gunicorn_argv,
    load,
    running,
    stop_under_load,
    uvicorn_argv,
)

pytestmark = pytest.mark.slow

N = 200
STARLETTE = "tests.e2e.apps.starlette_app:app"
MOUNTED = "tests.e2e.apps.mounted_app:app"
NO_LIFESPAN = "SegmentMiddleware got a request but no lifespan startup"
REPORT = re.compile(REPORT_PREFIX + r" pid=(\d+) sent=(\d+) pending=(\d+) failed=(\d+)")


def shutdown_reports(log: str) -> dict[int, tuple[int, int, int]]:
    """pid -> (sent, pending, failed) at lifespan shutdown, from the server's log."""
    return {int(pid): (int(s), int(p), int(f)) for pid, s, p, f in REPORT.findall(log)}


def uvicorn_worker_class() -> str:
    """gunicorn's worker class for uvicorn: the uvicorn-worker package, or uvicorn's own."""
    if importlib.util.find_spec("uvicorn_worker") is not None:
        return "uvicorn_worker.UvicornWorker"
    return "uvicorn.workers.UvicornWorker"  # deprecated in uvicorn 0.30+, still there


def two_workers(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return uvicorn_argv(STARLETTE, port, "--workers", "2")
    return gunicorn_argv(STARLETTE, port, "--worker-class", uvicorn_worker_class())


@pytest.mark.parametrize("server_name", ["uvicorn", "gunicorn"])
def test_two_workers_flush_on_lifespan_shutdown(
    segment_collector: Any, tmp_path: Path, server_name: str
) -> None:
    port = free_port()
    argv = two_workers(server_name, port)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running(server_name, argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        served = load(server, N)
        assert segment_collector.summary()["total"] == 0
        # The supervisor passes SIGTERM on to each worker, which runs lifespan shutdown.
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    assert_all_delivered(segment_collector, N)
    reports = shutdown_reports(log)
    assert len(reports) == 2, log
    assert all(pending == 0 and failed == 0 for _, pending, failed in reports.values()), reports
    sent = {pid: report[0] for pid, report in reports.items()}
    assert sent == {pid: 2 * served.get(pid, 0) for pid in reports}, (sent, served)


def test_sigterm_during_traffic_delivers_every_answered_request(
    segment_collector: Any, tmp_path: Path
) -> None:
    port = free_port()
    argv = uvicorn_argv(STARLETTE, port, "--workers", "2")
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uvicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        answered, requested, status = stop_under_load(server)
        assert status == 0
        log = server.log()
    assert_delivered_for(segment_collector, answered, requested)
    assert all(report[1:] == (0, 0) for report in shutdown_reports(log).values()), log


@pytest.mark.parametrize("workers", [1, 2])
def test_a_mounted_app_s_middleware_delivers_on_sigterm_through_flushing_at_shutdown(
    segment_collector: Any, tmp_path: Path, workers: int
) -> None:
    port = free_port()
    argv = uvicorn_argv(MOUNTED, port, "--workers", str(workers))
    env = {**app_env(segment_collector.url, **HOLD_UNTIL_EXIT), "E2E_FLUSHING_AT_SHUTDOWN": "1"}
    with running("uvicorn", argv, port=port, env=env, log_dir=tmp_path, workers=workers) as s:
        load(s, N)
        assert segment_collector.summary()["total"] == 0  # held until shutdown
        assert s.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        log = s.log()
    # The server has exited: whatever it delivered is at the collector already.
    assert_all_delivered(segment_collector, N, timeout=1)
    assert NO_LIFESPAN not in log


@pytest.mark.parametrize(
    ("app", "options"),
    [(MOUNTED, ()), (STARLETTE, ("--lifespan", "off"))],
    ids=["mounted", "lifespan-off"],
)
def test_a_middleware_without_lifespan_warns_at_its_first_request(
    segment_collector: Any, tmp_path: Path, app: str, options: tuple[str, ...]
) -> None:
    port = free_port()
    argv = uvicorn_argv(app, port, *options)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uvicorn", argv, port=port, env=env, log_dir=tmp_path) as server:
        load(server, 10)
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        log = server.log()
    assert log.count(NO_LIFESPAN) == 1, log
    assert "segment_asgi.flushing_at_shutdown(app)" in log


def test_django_asgi_without_lifespan_support_is_flushed_by_the_middleware(
    segment_collector: Any, tmp_path: Path
) -> None:
    port = free_port()
    # --lifespan on: uvicorn refuses to start an app that fails lifespan. Django's ASGI
    # handler does not support it; SegmentMiddleware answers it in Django's place.
    argv = uvicorn_argv("tests.e2e.apps.django_site.asgi:application", port, "--lifespan", "on")
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uvicorn", argv, port=port, env=env, log_dir=tmp_path) as server:
        load(server, N)
        assert segment_collector.summary()["total"] == 0
        # uvicorn re-raises the signal once it has shut down (0.29+): -SIGTERM, or 0.
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        log = server.log()
    assert_all_delivered(segment_collector, N)
    assert "Application startup complete." in log
    assert "Application shutdown complete." in log
    assert list(shutdown_reports(log).values()) == [(2 * N, 0, 0)], log
    assert "Traceback" not in log


@pytest.mark.parametrize("server_name", ["uvicorn", "uvicorn-workers", "gunicorn"])
def test_django_asgi_with_segment_django_delivers_on_sigterm(
    segment_collector: Any, tmp_path: Path, server_name: str
) -> None:
    # segment_django.asgi.get_asgi_application: Django's handler, and the flush at
    # lifespan shutdown that it lacks (ASGI servers run no atexit in their workers).
    port = free_port()
    app = "tests.e2e.apps.django_site.asgi_segment_django:application"
    workers = 1 if server_name == "uvicorn" else 2
    if server_name == "gunicorn":
        argv = gunicorn_argv(app, port, "--worker-class", uvicorn_worker_class())
    else:
        argv = uvicorn_argv(app, port, "--workers", str(workers))
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running(server_name, argv, port=port, env=env, log_dir=tmp_path, workers=workers) as s:
        load(s, N)
        assert s.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    # The server has exited: whatever it delivered is at the collector already.
    assert_all_delivered(segment_collector, N, timeout=1)


@pytest.mark.parametrize("server_name", ["uvicorn", "gunicorn"])
def test_a_graceful_stop_delivers_what_finished_requests_sent_while_a_stream_goes_on(
    segment_collector: Any, tmp_path: Path, server_name: str
) -> None:
    """The server waits for the stream before lifespan shutdown (and gunicorn kills a
    worker past its graceful timeout): what the finished requests sent is delivered
    as the stop begins."""
    port = free_port()
    release = tmp_path / "release"
    if server_name == "uvicorn":
        argv = uvicorn_argv(STARLETTE, port)
    else:
        argv = gunicorn_argv(STARLETTE, port, "--worker-class", uvicorn_worker_class())
        argv += ["--workers", "1"]
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    env["E2E_RELEASE_FILE"] = str(release)
    n = 20
    with running(server_name, argv, port=port, env=env, log_dir=tmp_path) as server:
        load(server, n)
        with requests.get(f"{server.url}/linger", stream=True, timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines) == b"started"
            assert segment_collector.summary()["total"] == 0  # held in the worker
            server.process.send_signal(signal.SIGTERM)
            # The stream goes on: only the stop's start can have sent these.
            segment_collector.wait_for(2 * n, timeout=10)
            release.touch()
            assert next(lines) == b"released"
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    assert_all_delivered(segment_collector, n)
