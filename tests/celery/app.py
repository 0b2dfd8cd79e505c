"""A Celery app without Django, on the test's Redis (``TEST_REDIS_URL``).

Its client options are Celery configuration keys (``segment_flush_at`` ...),
from the ``SEGMENT_*`` variables the tests set. Each task records what it did in
the Redis set ``done`` *after* tracking, so a test can compare the tasks that
finished with the events that arrived.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

import segment_core
from segment_celery import SegmentCelery
from segment_core.scope import analytics
from tests.e2e.apps.options import client_options
from tests.jobs import DONE, TASK_EVENT

BROKER = os.environ["TEST_REDIS_URL"]

app = Celery("segment_tests", broker=BROKER)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
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
