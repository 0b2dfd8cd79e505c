"""Under pytest (and Django's test runner) the client SegmentCelery builds from its
options sends nothing: its events wait in ``segment_core.testing.outbox`` unless
``send_in_tests``.

Tasks run here through ``task.apply()`` with the ``segment_visitor`` header, as a
worker runs them; the collector is a real one on loopback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

import segment_core
from segment_celery import HEADER, SegmentCelery
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.scope import Analytics, analytics
from segment_core.testing import outbox

VISITOR = Analytics(user_id="user-42", anonymous_id="anon-42")


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    app = Celery("own-client-tests", broker="memory://", set_as_current=False)
    yield app
    app.close()


@pytest.fixture(autouse=True)
def _keep_the_default_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The extension's client becomes the default client: shut down after the test."""
    monkeypatch.setattr(segment_core, "default_client", None)
    yield
    if segment_core.default_client is not None:
        segment_core.default_client.shutdown(timeout=5)


def confirmation_task(app: Celery) -> Callable[[int], None]:
    """A task that tracks for its visitor, run as a worker runs it: the visitor
    comes from the message header."""

    @app.task
    def send_order_confirmation(order_id: int) -> None:
        analytics().track("Order Confirmation Sent", {"order_id": order_id})

    def run(order_id: int) -> None:
        send_order_confirmation.apply(args=(order_id,), headers={HEADER: VISITOR.snapshot()})

    return run


def sent_count(segment: SegmentCelery, collector: CollectorHandle) -> int:
    """How many of what the extension's client accepted reached the collector."""
    assert segment.client.flush(timeout=10)
    total: int = collector.summary()["total"]
    return total


def test_a_client_built_from_keywords_puts_task_events_in_the_outbox(
    celery_app: Celery, segment_collector: CollectorHandle
) -> None:
    segment = SegmentCelery(celery_app, write_key="k", host=segment_collector.url)
    confirmation_task(celery_app)(7)
    assert sent_count(segment, segment_collector) == 0
    assert [(m["event"], m["userId"]) for m in outbox] == [("Order Confirmation Sent", "user-42")]


def test_so_do_module_level_calls_through_it(
    celery_app: Celery, segment_collector: CollectorHandle
) -> None:
    segment = SegmentCelery(celery_app, write_key="k", host=segment_collector.url)
    assert segment_core.get_client() is segment.client
    assert segment_core.track("user-1", "Nightly Export")[0]
    assert sent_count(segment, segment_collector) == 0
    assert [m["event"] for m in outbox] == ["Nightly Export"]


def test_a_client_built_from_namespaced_config_keys_puts_task_events_in_the_outbox(
    celery_app: Celery, segment_collector: CollectorHandle
) -> None:
    class Settings:
        CELERY_SEGMENT_WRITE_KEY = "k"
        CELERY_SEGMENT_HOST = segment_collector.url

    celery_app.config_from_object(Settings, namespace="CELERY")
    segment = SegmentCelery(celery_app)
    confirmation_task(celery_app)(7)
    assert sent_count(segment, segment_collector) == 0
    assert [m["event"] for m in outbox] == ["Order Confirmation Sent"]


@pytest.mark.parametrize(
    ("keywords", "config"),
    [
        ({"send_in_tests": True}, {}),
        ({}, {"segment_send_in_tests": True}),
        ({}, {"CELERY_SEGMENT_SEND_IN_TESTS": True}),
        ({"send_in_tests": 1}, {"segment_send_in_tests": False}),  # the keyword wins
    ],
)
def test_send_in_tests_sends(
    celery_app: Celery,
    segment_collector: CollectorHandle,
    keywords: dict[str, Any],
    config: dict[str, Any],
) -> None:
    class Settings:
        CELERY_SEGMENT_WRITE_KEY = "k"
        CELERY_SEGMENT_HOST = segment_collector.url

    for key, value in config.items():
        setattr(Settings, key, value)
    celery_app.config_from_object(Settings, namespace="CELERY")
    segment = SegmentCelery(celery_app, **keywords)
    confirmation_task(celery_app)(7)
    assert sent_count(segment, segment_collector) == 1
    assert outbox == []


def test_a_client_given_is_never_diverted(
    celery_app: Celery, segment_collector: CollectorHandle
) -> None:
    given = Client("k", host=segment_collector.url)
    try:
        segment = SegmentCelery(celery_app, client=given, send_in_tests=False)
        confirmation_task(celery_app)(7)
        assert sent_count(segment, segment_collector) == 1
        assert outbox == []
    finally:
        given.shutdown(timeout=5)


def test_send_in_tests_must_be_a_bool(celery_app: Celery) -> None:
    with pytest.raises(ValueError, match=r"send_in_tests must be True or False.*'yes'"):
        SegmentCelery(celery_app, write_key="k", send_in_tests="yes")


def test_a_misspelt_send_in_tests_is_named(celery_app: Celery) -> None:
    with pytest.raises(TypeError, match="'send_in_test'; did you mean 'send_in_tests'"):
        SegmentCelery(celery_app, write_key="k", send_in_test=True)
    with pytest.raises(TypeError, match="'segment_write_key'; did you mean 'write_key'"):
        SegmentCelery(celery_app, segment_write_key="k")


DJANGO_RUNNER_SCRIPT = """
import sys

import django
from django.conf import settings

settings.configure(
    CELERY_BROKER_URL="memory://",
    CELERY_SEGMENT_WRITE_KEY="k",
    CELERY_SEGMENT_HOST=sys.argv[1],
)
django.setup()

from celery import Celery

from segment_celery import SegmentCelery
from segment_core.scope import analytics
from segment_core.testing import outbox

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
segment = SegmentCelery(app)
_ = segment.client  # built as the worker or the app module makes it: no test runner yet
if sys.argv[2] == "tests":
    from django.test.utils import setup_test_environment

    setup_test_environment()  # as manage.py test, or a runtests.py script's runner, does


@app.task
def send_order_confirmation(order_id):
    analytics().track("Order Confirmation Sent", {"order_id": order_id}, user_id="user-1")


send_order_confirmation.apply(args=(7,))
assert segment.client.flush(timeout=10)
print(len(outbox))
"""


@pytest.mark.parametrize(("mode", "outboxed", "sent"), [("tests", 1, 0), ("production", 0, 1)])
def test_django_s_test_runner_counts_as_running_tests(
    segment_collector: CollectorHandle, mode: str, outboxed: int, sent: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DJANGO_RUNNER_SCRIPT, segment_collector.url, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == outboxed
    assert segment_collector.summary()["total"] == sent
