"""A Celery app without Django, on the test's Redis (``TEST_REDIS_URL``).

Its client options are Celery configuration keys (``segment_flush_at`` ...),
from the ``SEGMENT_*`` variables the tests set. Each task records what it did in
the Redis set ``done`` *after* tracking, so a test can compare the tasks that
finished with the events that arrived.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from typing import Any

import redis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

import segment_core
from segment_celery import SegmentCelery
from segment_core import Client
from segment_core.scope import analytics, start_thread
from tests.e2e.apps.options import client_options
from tests.jobs import DONE, STOPPED, TASK_EVENT

BROKER = os.environ["TEST_REDIS_URL"]

app = Celery("segment_tests", broker=BROKER)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_backend=BROKER,  # for the chord's tasks alone, which keep their results
    **{"segment_" + name: value for name, value in client_options().items()},
)
SegmentCelery(app)
_redis = redis.Redis.from_url(BROKER)


@app.task
def work(n: int, pause: float = 0.0) -> None:
    """Some work, then one event, then "done"."""
    if pause:
        time.sleep(pause)
    segment_core.track(f"job-{n}", TASK_EVENT, {"n": n, "pid": os.getpid()})
    _redis.sadd(DONE, n)


@app.task
def track_for_visitor(label: str) -> None:
    """Tracks for whoever the task is bound to; publishes a follow-up task."""
    analytics().track("Visitor Task", {"label": label, "pid": os.getpid()})
    if label == "first":
        track_for_visitor.delay("follow-up")


@app.task(bind=True)
def track_with_request(self: object, label: str) -> None:
    """The task helper: ``self.request.analytics``."""
    self.request.analytics.track("Visitor Task", {"label": label})  # type: ignore[attr-defined]


@app.task
def track_then_finish_in_a_thread(label: str, seconds: float, how: str = "start_thread") -> None:
    """Tracks, and leaves a thread that tracks ``seconds`` later, after the task
    returned: started with ``start_thread``, or as a plain thread."""
    user_id = analytics().user_id

    def finish() -> None:
        threading.Event().wait(seconds)  # work that goes on after the task
        segment_core.track(user_id, "Thread Finished", {"label": label})

    if how == "start_thread":
        start_thread(finish)
    else:
        threading.Thread(target=finish).start()
    analytics().track("Task Returned", {"label": label})
    _redis.sadd(DONE, label)


@app.task
def track_then_die(label: str) -> None:
    """Tracks, then dies at once as the OOM killer would end it: SIGKILL, no exit path."""
    segment_core.track("killed", "Killed Task", {"label": label})
    os.kill(os.getpid(), signal.SIGKILL)


def _enrich(message: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.05)  # a lookup to enrich the message: most of the task's time
    return message


@functools.cache
def _enriching_client() -> Client:
    return Client(**client_options(), before_send=_enrich)


@app.task(soft_time_limit=1, time_limit=60)
def track_until_stopped(n: int) -> None:
    """Tracks in a loop until its soft time limit stops it; records that it did."""
    client = _enriching_client()
    try:
        while True:
            client.track(f"job-{n}", "Loop Step", {"n": n})
    except SoftTimeLimitExceeded:
        _redis.sadd(STOPPED, n)
        raise


@app.task(ignore_result=False)
def track_part(label: str) -> str:
    """A chord's header task: tracks for whoever it is bound to."""
    analytics().track("Visitor Task", {"label": label})
    return label


@app.task(ignore_result=False)
def track_summary(parts: list[str], label: str) -> str:
    """A chord's callback, published by the header task that finished last."""
    bound_to = analytics()
    unbound = bound_to.user_id is None and bound_to.anonymous_id is None
    extra = {"anonymous_id": "unbound"} if unbound else {}
    bound_to.track("Visitor Task", {"label": label, "parts": sorted(parts)}, **extra)
    return label
