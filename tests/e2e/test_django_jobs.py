"""Django beyond the request, on real processes: Celery tasks started by a view,
threads started by a view, management commands and ``runserver`` stopped by SIGTERM.

The client is built in ``AppConfig.ready()`` from ``settings.SEGMENT``, on the
main thread: commands and workers send, and SIGTERM delivers what is held.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    ROOT,
    Server,
    app_env,
    assert_all_delivered,
    free_port,
    load,
    running,
)
from tests.workers import CELERY_READY, celery_argv, running_worker

pytestmark = pytest.mark.slow

SETTINGS = "tests.e2e.apps.django_jobs.settings"
COMMAND_TIMEOUT = 60.0


def django_env(collector_url: str, redis_url: str = "", **options: Any) -> dict[str, str]:
    env = app_env(collector_url, **options)
    # Only settings.SEGMENT knows where to send: as in a real project.
    env["TEST_WRITE_KEY"] = env.pop("SEGMENT_WRITE_KEY")
    env["TEST_SEGMENT_HOST"] = env.pop("SEGMENT_HOST")
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    env["TEST_REDIS_URL"] = redis_url
    return env


@pytest.fixture
def runserver(segment_collector: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """Start ``manage.py runserver --noreload`` with options; yields the server."""

    def start(redis_url: str = "", **options: Any) -> Iterator[Server]:
        port = free_port()
        argv = [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"]
        env = django_env(segment_collector.url, redis_url, **options)
        return running("runserver", argv, port=port, env=env, log_dir=tmp_path)

    return start


def test_a_task_enqueued_by_a_view_tracks_for_the_visitor(
    segment_collector: Any, redis_db: str, runserver: Any, tmp_path: Path
) -> None:
    env = django_env(segment_collector.url, redis_db, flush_interval=0.3)
    argv = celery_argv("tests.e2e.apps.django_jobs.celery_app", "--pool", "prefork", "-c", "1")
    with (
        running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker,
        runserver(redis_db, flush_interval=0.3) as server,
    ):
        response = requests.get(
            f"{server.url}/order/o-77?utm_campaign=spring&utm_medium=email",
            headers={
                "X-Test-User": "user-9",
                "User-Agent": "Mozilla/5.0 (e2e)",
                "Accept-Language": "de-CH,de;q=0.8",
            },
            cookies={"ajs_anonymous_id": "anon-in-cookie-1"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        [event] = segment_collector.wait_for(1, timeout=30, event="Order Email Sent")
        assert worker.stop() == 0
    message = event["message"]
    assert event["status"] == "good", event["reasons"]
    assert message["properties"]["order_id"] == "o-77"
    assert message["userId"] == "user-9"
    assert message["anonymousId"] == "anon-in-cookie-1"
    context = message["context"]
    assert context["ip"] == "127.0.0.1"
    assert context["userAgent"] == "Mozilla/5.0 (e2e)"
    assert context["locale"] == "de-CH"
    assert context["page"]["path"] == "/order/o-77"
    assert context["campaign"] == {"name": "spring", "medium": "email"}
    # The view's own page call is the same visitor.
    [page] = segment_collector.events(type="page")
    assert page["message"]["anonymousId"] == "anon-in-cookie-1"


def test_a_thread_and_an_executor_started_in_a_view_track_for_the_visitor(
    segment_collector: Any, runserver: Any
) -> None:
    with runserver(flush_interval=0.3) as server:
        response = requests.get(
            f"{server.url}/threads",
            headers={"X-Test-User": "user-3"},
            cookies={"ajs_anonymous_id": "anon-threads"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        events = segment_collector.wait_for(2, timeout=30, event="Background Work")
    assert sorted(e["message"]["properties"]["where"] for e in events) == ["executor", "thread"]
    for event in events:
        assert event["message"]["userId"] == "user-3"
        assert event["message"]["anonymousId"] == "anon-threads"
        assert event["message"]["context"]["page"]["path"] == "/threads"


def test_runserver_sigterm_delivers_what_it_holds(segment_collector: Any, runserver: Any) -> None:
    n = 30
    with runserver(**HOLD_UNTIL_EXIT) as server:
        load(server, n, concurrency=2)
        assert segment_collector.summary()["total"] == 0  # held until the exit
        status = server.stop(signal.SIGTERM)
        log = server.log()
    assert status == -signal.SIGTERM, log
    assert_all_delivered(segment_collector, n)


@pytest.mark.parametrize(
    "command",
    [
        ["import_orders", "25"],
        [
            "shell",
            "-c",
            "import segment_core\nfor n in range(25): "
            "segment_core.track('importer', 'Order Imported', {'n': n})",
        ],
    ],
    ids=["command", "shell"],
)
def test_a_management_command_delivers_as_it_exits(
    segment_collector: Any, command: list[str]
) -> None:
    env = django_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    manage = [sys.executable, "-m", "django", *command]
    result = subprocess.run(
        manage, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    # Delivered by the time the process ended: atexit, within shutdown_timeout.
    events = segment_collector.wait_for(25, timeout=5, event="Order Imported")
    assert sorted(e["message"]["properties"]["n"] for e in events) == list(range(25))
    assert segment_collector.summary()["duplicates"] == 0


def test_manage_py_test_captures_in_the_outbox_and_sends_nothing(segment_collector: Any) -> None:
    env = django_env(segment_collector.url, flush_interval=0.1)
    argv = [sys.executable, "-m", "django", "test", "tests.e2e.apps.django_jobs.runner_checks"]
    result = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 2 tests" in result.stderr
    assert segment_collector.summary()["total"] == 0


def test_no_write_key_fails_only_check_deploy(segment_collector: Any) -> None:
    """DEBUG is False and there is no write key: migrate works, check --deploy says why."""
    env = django_env(segment_collector.url)
    del env["TEST_WRITE_KEY"]

    def manage(*command: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "django", *command]
        return subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )

    assert manage("migrate", "--noinput").returncode == 0
    assert manage("check").returncode == 0
    deploy = manage("check", "--deploy")
    assert deploy.returncode != 0
    assert "segment_django.E004" in deploy.stderr
