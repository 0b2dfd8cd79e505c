"""uWSGI (master + 2 processes): a stop or a reload delivers what the workers accepted.

uWSGI 2.0's signals: SIGINT and SIGQUIT (and SIGTERM with ``--die-on-term``) stop
the instance *brutally* (``kill_them_all``, "immediately kill the entire uWSGI
stack" in uWSGI's docs): every worker gets SIGINT and calls ``exit()`` at once, and
uWSGI's Python plugin skips the atexit hooks of a worker that is busy, so a busy
worker loses *everything* its client held, not only the request at hand. Busy
lasts until uWSGI has closed the request, which can be after the HTTP client
already has the whole response: on a loaded machine a brutal stop sent right after
the last answer can still find a worker busy. Without ``--die-on-term`` SIGTERM is
a reload. The graceful stop is ``gracefully_kill_them_all``, e.g. on SIGTERM with
``--hook-master-start "unix_signal:15 gracefully_kill_them_all"``: a busy worker
finishes its request, then exits through its atexit hooks. SIGHUP is the graceful
reload.

A worker delivers through ``uwsgi.atexit`` (chained by segment_core), which uWSGI
calls as the worker exits, before ``Py_Finalize`` runs Python's own ``atexit``;
``--skip-atexit-teardown`` skips the latter, so a test with it shows that the
``uwsgi.atexit`` chain alone is enough. Before a brutal stop the tests wait until
uWSGI's stats server reports the workers idle (all but one kept busy on purpose).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    ITEM_EVENT,
    READY_TIMEOUT,
    STOP_TIMEOUT,
    Server,
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
LINGERING = "tests.e2e.apps.flask_lingering:app"
LOADED = "tests.e2e.apps.flask_loaded_event:app"
LOADED_EVENT = "App Loaded"  # what it tracks as it is loaded (not imported here: it sends)
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


def two_graceful_flask_workers(
    segment_collector: Any, tmp_path: Path
) -> AbstractContextManager[Server]:
    """The Flask app in two threaded workers that SIGTERM stops gracefully, its
    events held until each worker exits."""
    port = free_port()
    argv = uwsgi(FLASK, port, "--enable-threads", *GRACEFUL_SIGTERM)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    return running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2)


def worker_statuses(stats_port: int) -> dict[int, str]:
    """Each worker's status ("idle", "busy", ...) as uWSGI's stats server reports it."""
    with socket.create_connection(("127.0.0.1", stats_port), timeout=5) as sock:
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    return {worker["pid"]: worker["status"] for worker in json.loads(data)["workers"]}


def wait_until_idle(stats_port: int, timeout: float = READY_TIMEOUT) -> None:
    """Wait until uWSGI itself counts no worker as busy.

    "busy" is the test uWSGI applies before it runs a worker's atexit hooks; it
    lasts until the worker has closed the request, which can be after the client
    read the whole response.
    """
    deadline = time.monotonic() + timeout
    while True:
        statuses = worker_statuses(stats_port)
        if all(status == "idle" for status in statuses.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"uWSGI workers not idle after {timeout:g}s: {statuses}")
        time.sleep(0.05)


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
    port, stats_port = free_port(), free_port()
    argv = uwsgi(app, port, "--enable-threads", "--stats", f"127.0.0.1:{stats_port}", *options)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        served = load(server, N)
        assert segment_collector.summary()["total"] == 0
        wait_until_idle(stats_port)
        assert server.stop(stop_signal) == 0
        log = server.log()
    messages = assert_all_delivered(segment_collector, N)
    assert {m["properties"]["pid"] for m in messages if m["type"] == "track"} == set(served)
    assert THREADS_WARNING not in log
    assert "Traceback" not in log


def test_graceful_stop_during_traffic_delivers_every_answered_request(
    segment_collector: Any, tmp_path: Path
) -> None:
    with two_graceful_flask_workers(segment_collector, tmp_path) as server:
        answered, requested, status = stop_under_load(server, sig=signal.SIGTERM)
        assert status == 0
    assert_delivered_for(segment_collector, answered, requested)


def test_a_graceful_stop_waits_for_a_view_s_background_work_and_delivers_it(
    segment_collector: Any, tmp_path: Path
) -> None:
    # uWSGI ends a worker without waiting for Python's threads: its atexit hook waits
    # for the work start_thread runs, within shutdown_timeout.
    with two_graceful_flask_workers(segment_collector, tmp_path) as server:
        response = requests.get(f"{server.url}/export/7", timeout=30)
        assert response.status_code == 200, response.text
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    [finished] = segment_collector.wait_for(1, event="Export Finished")
    assert finished["message"]["properties"]["n"] == 7
    assert "dropped" not in log


def start_lingering_request(
    server: Server, stats_port: int, item: int, release: Path
) -> tuple[int, dict[int, str]]:
    """``GET /item/<item>?linger=1``: answered, its worker stays busy until ``release``."""
    assert not release.exists()
    response = requests.get(f"{server.url}/item/{item}", params={"linger": 1}, timeout=30)
    assert response.status_code == 200, response.text
    pid = int(response.text)
    statuses = worker_statuses(stats_port)
    assert statuses[pid] == "busy", statuses
    return pid, statuses


def test_graceful_stop_waits_for_a_worker_still_closing_an_answered_request(
    segment_collector: Any, tmp_path: Path
) -> None:
    port, stats_port = free_port(), free_port()
    release = tmp_path / "release"
    argv = uwsgi(LINGERING, port, "--enable-threads", "--stats", f"127.0.0.1:{stats_port}")
    argv += GRACEFUL_SIGTERM
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    env["E2E_RELEASE_FILE"] = str(release)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        load(server, N - 1)
        start_lingering_request(server, stats_port, N - 1, release)
        server.process.send_signal(signal.SIGTERM)
        # Both workers took the graceful stop; one of them is still in its request.
        server.wait_for_log(r"Gracefully killing worker", count=2)
        release.touch()
        assert server.process.wait(STOP_TIMEOUT) == 0
    assert_all_delivered(segment_collector, N)


def test_brutal_stop_loses_all_a_busy_worker_held(segment_collector: Any, tmp_path: Path) -> None:
    """What the README warns of: SIGINT skips every atexit hook of a busy worker, so
    the events of all the requests it served are lost, although each was answered."""
    port, stats_port = free_port(), free_port()
    release = tmp_path / "release"
    argv = uwsgi(LINGERING, port, "--enable-threads", "--stats", f"127.0.0.1:{stats_port}")
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    env["E2E_RELEASE_FILE"] = str(release)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        served = load(server, N - 1)
        wait_until_idle(stats_port)
        busy_pid, statuses = start_lingering_request(server, stats_port, N - 1, release)
        (idle_pid,) = set(statuses) - {busy_pid}
        # No release: the busy worker exits inside its request.
        assert server.stop(signal.SIGINT) == 0
    # Each worker delivers before it exits, so what the master outlived is all there is.
    tracks = segment_collector.events(type="track", event=ITEM_EVENT, limit=2 * N)
    by_pid = {pid: 0 for pid in statuses}
    for event in tracks:
        by_pid[event["message"]["properties"]["pid"]] += 1
    assert by_pid == {idle_pid: served[idle_pid], busy_pid: 0}, (by_pid, served)


def test_graceful_reload_loses_nothing(segment_collector: Any, tmp_path: Path) -> None:
    """SIGHUP, more traffic, then the graceful stop: every event of both generations
    of workers arrives (the stop follows the last answer at once, with no wait for
    the workers to be idle: the graceful stop must not need one)."""
    with two_graceful_flask_workers(segment_collector, tmp_path) as server:
        before = load(server, N // 2)
        server.process.send_signal(signal.SIGHUP)
        # The old workers deliver as they exit; the new ones start with empty buffers.
        segment_collector.wait_for(N, timeout=20)
        server.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
        server.wait_until_ready(workers=2)
        after = load(server, N, first=N // 2)
        assert not set(before) & set(after), (before, after)
        # The hook is run again by the master uWSGI re-executed on SIGHUP.
        assert server.log().count('gracefully_kill_them_all" (master-start)') == 2
        assert server.stop(signal.SIGTERM) == 0
    assert_all_delivered(segment_collector, N)


def test_an_event_the_master_sends_as_it_loads_the_app_arrives_once_and_runs_no_thread(
    segment_collector: Any, tmp_path: Path
) -> None:
    """uWSGI forks its workers from the master without taking the GIL: a thread
    running there would leave a worker waiting for it for ever. Nor does the master
    run exit handlers. Its calls are delivered as they are made."""
    port = free_port()
    argv = uwsgi(LOADED, port, "--enable-threads", *GRACEFUL_SIGTERM)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        master = server.process.pid
        [loaded] = segment_collector.wait_for(1, event=LOADED_EVENT)
        assert loaded["message"]["properties"]["pid"] == master
        assert os.listdir(f"/proc/{master}/task") == [str(master)]
        served = load(server, N // 10)
        assert master not in served
        assert server.stop(signal.SIGTERM) == 0
    events = segment_collector.wait_for(2 * (N // 10) + 1, timeout=20)
    assert [e["message"].get("event") for e in events].count(LOADED_EVENT) == 1
    assert segment_collector.summary()["duplicates"] == 0


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
