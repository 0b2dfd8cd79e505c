"""Development servers that restart on every edit (Django's runserver, ``flask run
--debug``, ``uvicorn --reload``) while the host is unreachable.

Each serves the edited code only once the old process has ended, which delivers
first: there that delivery waits at most a second, not the
client's ``shutdown_timeout``, and says in one line what it left.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    ROOT,
    Server,
    app_env,
    free_port,
    running,
    uvicorn_argv,
)

pytestmark = pytest.mark.slow

#: Far longer than a reload takes, even on a slow machine: a server that waits for
#: it is seen, whatever the machine's speed.
SHUTDOWN_TIMEOUT = 60.0
#: The README's bound on the delivery of a process that a reloader replaces.
RELOAD_WAIT = 1.0
#: The new process's start (Django's checks included), with room for a slow machine:
#: half of what waiting for SHUTDOWN_TIMEOUT alone would take.
RELOAD_ALLOWANCE = SHUTDOWN_TIMEOUT / 2 - RELOAD_WAIT


def unreachable_host() -> str:
    """A loopback port nobody listens on: every attempt is refused."""
    return f"http://127.0.0.1:{free_port()}"


def current_pid(server: Server) -> int | None:
    try:
        return int(requests.get(server.url + "/health", timeout=2).text)
    except (requests.RequestException, ValueError):
        return None  # between the old process and the new one


def reload_after(server: Server, edit: Callable[[], None], reloading: str) -> float:
    """Seconds from the reloader's ``reloading`` line (it saw ``edit``) until a new
    process answers: the old one's exit, and the new one's start."""
    old = current_pid(server)
    assert old is not None
    for n in range(3):  # events the old process holds, which it cannot deliver
        assert requests.get(f"{server.url}/item/{n}", timeout=10).status_code == 200
    # An edit made while the reloader takes its first look at the files goes unseen.
    deadline = time.monotonic() + 3 * SHUTDOWN_TIMEOUT
    while reloading not in server.log():
        edit()
        seen_by = time.monotonic() + 2.0  # the reloaders look every second or less
        while reloading not in server.log() and time.monotonic() < seen_by:
            time.sleep(0.05)
        assert time.monotonic() < deadline, "the reloader saw no edit"
    seen = time.monotonic()
    while current_pid(server) in (old, None):
        assert time.monotonic() < deadline, "the server did not come back"
        time.sleep(0.05)
    return time.monotonic() - seen


def touch(path: Path) -> Callable[[], None]:
    def edit() -> None:
        path.write_text(path.read_text() + "# edited\n")

    return edit


def dev_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = app_env(unreachable_host(), shutdown_timeout=SHUTDOWN_TIMEOUT, **HOLD_UNTIL_EXIT)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    env.update(extra)
    return env


def test_runserver_reloads_without_waiting_for_the_host(tmp_path: Path) -> None:
    settings = tmp_path / "reload_settings.py"  # watched: the project's settings module
    settings.write_text(
        "from tests.e2e.apps.django_site.settings import *  # noqa: F403\n"
        "DEBUG = True  # as in development: the reloader says what it reloads for\n"
    )
    port = free_port()
    argv = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}"]
    env = dev_env(tmp_path, DJANGO_SETTINGS_MODULE="reload_settings")
    with running("runserver", argv, port=port, env=env, log_dir=tmp_path) as server:
        elapsed = reload_after(server, touch(settings), "changed, reloading")
        log = server.log()
    assert elapsed < RELOAD_WAIT + RELOAD_ALLOWANCE, (elapsed, log)
    assert "Segment client shut down with 6 message(s) undelivered" in log, log


def test_flask_debug_reloads_without_waiting_for_the_host(tmp_path: Path) -> None:
    watched = tmp_path / "watched.py"
    watched.write_text("")
    port = free_port()
    app = "tests.e2e.apps.flask_app"
    argv = [sys.executable, "-m", "flask", "--app", app, "run", "--debug", "--port", str(port)]
    argv += ["--extra-files", str(watched)]
    with running("flask", argv, port=port, env=dev_env(tmp_path), log_dir=tmp_path) as server:
        elapsed = reload_after(server, touch(watched), "Detected change")
        log = server.log()
    assert elapsed < RELOAD_WAIT + RELOAD_ALLOWANCE, (elapsed, log)
    assert "Segment client shut down with 6 message(s) undelivered" in log, log


def test_uvicorn_reload_reloads_without_waiting_for_the_host(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "edited.py").write_text("")
    port = free_port()
    app = "tests.e2e.apps.starlette_app:app"
    argv = uvicorn_argv(app, port, "--reload", "--reload-dir", str(watched))
    with running("uvicorn", argv, port=port, env=dev_env(tmp_path), log_dir=tmp_path) as server:
        elapsed = reload_after(server, touch(watched / "edited.py"), "Reloading...")
        log = server.log()
    assert elapsed < RELOAD_WAIT + RELOAD_ALLOWANCE, (elapsed, log)
    assert "6 message(s) not delivered" in log, log
    assert "within 1s (a development server's reload) at shutdown" in log, log


def test_uvicorn_workers_keep_their_shutdown_timeout(tmp_path: Path) -> None:
    # uvicorn serves from spawned processes with --workers too: no reloader there.
    port = free_port()
    argv = uvicorn_argv("tests.e2e.apps.starlette_app:app", port, "--workers", "2")
    env = app_env(unreachable_host(), shutdown_timeout=1, **HOLD_UNTIL_EXIT)
    with running("uvicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        for n in range(3):
            assert requests.get(f"{server.url}/item/{n}", timeout=10).status_code == 200
        server.stop(signal.SIGTERM)
        log = server.log()
    assert "within shutdown_timeout=1s at shutdown" in log, log
    assert "development server" not in log, log
