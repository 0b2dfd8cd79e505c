"""Under pytest-django (and ``manage.py test``) the Django client sends nothing:
its events wait in ``segment_django.testing.outbox`` unless ``SEND_IN_TESTS``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.checks import run_checks
from django.test import Client as DjangoClient

import segment_core
import segment_django
from segment_django.conf import running_tests
from segment_django.testing import outbox
from tests.e2e.servers import app_env, free_port, running


@pytest.fixture(autouse=True)
def _no_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment_core, "default_client", None)


def test_pytest_django_counts_as_running_tests() -> None:
    assert running_tests()


def test_a_child_a_test_forks_keeps_its_test_mode(settings: Any, segment_collector: Any) -> None:
    """A child the test forks (a pool of the code under test, a server) inherits the
    test environment and the diverted client: it sends nothing either."""
    settings.SEGMENT = {"WRITE_KEY": "k", "HOST": segment_collector.url}
    client = segment_django.get_client()
    assert DjangoClient().get("/track/").status_code == 200
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        code = 3
        try:
            served = DjangoClient().get("/track/").status_code == 200
            code = 0 if served and client.flush(10) and len(outbox) == 4 else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(10)
    assert segment_collector.summary()["total"] == 0


def test_events_go_to_the_outbox_not_the_network(settings: Any, segment_collector: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", "HOST": segment_collector.url}
    response = DjangoClient().get("/track/")
    assert response.status_code == 200
    segment_core.track("user-1", "From A Signal")  # the module API: the same client
    outbox.assert_tracked("From A Signal")
    assert [m["type"] for m in outbox] == ["track", "page", "track"]
    assert segment_django.get_client().flush(timeout=5)
    assert segment_collector.summary()["total"] == 0


def test_the_outbox_is_empty_when_a_test_starts() -> None:
    outbox.assert_nothing_sent()


@pytest.mark.parametrize("send_in_tests", [True, 1])
def test_send_in_tests_sends(settings: Any, segment_collector: Any, send_in_tests: Any) -> None:
    settings.SEGMENT = {
        "WRITE_KEY": "k",
        "HOST": segment_collector.url,
        "SEND_IN_TESTS": send_in_tests,
    }
    DjangoClient().get("/track/")
    assert segment_django.get_client().flush(timeout=10)
    assert len(outbox) == 0
    assert segment_collector.summary()["total"] == 2


def test_events_are_captured_without_a_write_key(settings: Any) -> None:
    settings.SEGMENT = {}
    DjangoClient().get("/track/")
    assert [m["type"] for m in outbox] == ["track", "page"]


def test_send_in_tests_must_be_a_bool(settings: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", "SEND_IN_TESTS": "yes"}
    messages = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert [m.id for m in messages] == ["segment_django.E003"]
    assert "SEND_IN_TESTS" in messages[0].msg


RUNTESTS_SCRIPT = """
import sys
import django
from django.conf import settings

locmem = "django.core.mail.backends.locmem.EmailBackend"
settings.configure(
    INSTALLED_APPS=["segment_django"],
    SEGMENT={"WRITE_KEY": "k", "HOST": sys.argv[1], "FLUSH_AT": 1},
    **(
        {"EMAIL_BACKEND": locmem}
        if django.VERSION < (6, 1)
        else {"MAILERS": {"default": {"BACKEND": locmem}}}
    ),
)
django.setup()  # ready() builds the client: no test runner yet
if sys.argv[2] == "booted-then-tests":  # an app's ready() sent, before the runner started
    import segment_core

    segment_core.track("system", "App Booted")
if sys.argv[2] in ("tests", "booted-then-tests"):
    from django.test.utils import setup_test_environment

    setup_test_environment()  # as a runtests.py script's runner does
else:  # the locmem backend makes a mail.outbox outside tests too
    from django.core.mail import send_mail

    send_mail("Digest", "body", "from@example.com", ["to@example.com"])
import segment_core
from segment_django.testing import outbox

segment_core.track("user-1", "In A Script")
assert segment_core.default_client.flush(timeout=10)
print(len(outbox))
"""


@pytest.mark.parametrize(
    ("mode", "outboxed", "sent"),
    [("tests", 1, 0), ("booted-then-tests", 1, 1), ("production", 0, 1)],
)
def test_a_test_runner_started_after_the_client_was_made_still_counts(
    segment_collector: Any, mode: str, outboxed: int, sent: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUNTESTS_SCRIPT, segment_collector.url, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == outboxed
    assert segment_collector.summary()["total"] == sent


TESTSERVER_SETTINGS = """
from tests.e2e.apps.django_site.settings import *

SEGMENT = {**SEGMENT, "SEND_IN_TESTS": %r}
"""


@pytest.mark.parametrize(("send_in_tests", "sent"), [(False, 0), (True, 2)])
def test_testserver_sends_nothing_unless_send_in_tests(
    segment_collector: Any, tmp_path: Path, send_in_tests: bool, sent: int
) -> None:
    # The test database served to a browser suite, with the project's real key.
    (tmp_path / "testserver_settings.py").write_text(TESTSERVER_SETTINGS % send_in_tests)
    (tmp_path / "no_rows.json").write_text("[]")
    env = app_env(segment_collector.url, flush_at=1)
    env.update(DJANGO_SETTINGS_MODULE="testserver_settings", PYTHONPATH=str(tmp_path))
    port = free_port()
    argv = [sys.executable, "-m", "django", "testserver", "--noinput"]
    argv += ["--addrport", str(port), str(tmp_path / "no_rows.json")]
    with running("testserver", argv, port=port, env=env, log_dir=tmp_path) as server:
        assert requests.get(f"{server.url}/item/1", timeout=10).status_code == 200
        server.stop(signal.SIGINT)  # Ctrl-C: what was accepted is delivered as it exits
    if sent:
        segment_collector.wait_for(sent)
    assert segment_collector.summary()["total"] == sent
