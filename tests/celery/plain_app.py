"""A Celery app that only uses ``segment_core`` (no ``SegmentCelery``): what an app
migrating from analytics-python has after changing its import. Its default client
reads ``SEGMENT_*`` from the environment."""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_process_shutdown

import segment_core
from segment_core import Client
from tests.e2e.apps.options import client_options
from tests.jobs import DONE, TASK_EVENT

BROKER = os.environ["TEST_REDIS_URL"]
CHILD_EXIT_EVENT = "Pool Child Stopped"

app = Celery("segment_plain_tests", broker=BROKER)
app.conf.update(
    broker_connection_retry_on_startup=True, worker_prefetch_multiplier=1, task_ignore_result=True
)
_redis = redis.Redis.from_url(BROKER)

if "SEGMENT_SHUTDOWN_TIMEOUT" in os.environ:  # a test of an outage: its shutdown_timeout
    segment_core.default_client = Client(**client_options())


@app.task
def work(n: int) -> None:
    """One event, then "done"."""
    segment_core.track(f"job-{n}", TASK_EVENT, {"n": n, "pid": os.getpid()})
    _redis.sadd(DONE, n)


@worker_process_shutdown.connect
def child_exits(**ignored: Any) -> None:
    """The app's own receiver: an idle child's first and only event."""
    segment_core.track("worker", CHILD_EXIT_EVENT, {"pid": os.getpid()})
