"""What ``segment_rq.Worker`` runs in its own process as a job ends without its
work-horse: the job's ``on_stopped`` callback (RQ's stop-job command) and the
worker's ``work_horse_killed_handler`` act for the job's visitor.

Real ``rq worker`` processes on a real Redis. The callback and the handler below
are imported by name in the worker.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Callback
from rq.command import send_stop_job_command
from rq.job import Job

from segment_core.scope import analytics, bound
from segment_rq import Queue
from tests.e2e.servers import app_env
from tests.rq.test_worker import RQ_READY, TRACK_THEN_DIE, VISITOR, WORK, rq_argv
from tests.workers import poll, running_worker

pytestmark = pytest.mark.slow

STOPPED_EVENT = "Job Stopped"
KILLED_EVENT = "Work Horse Killed"
#: Longer than any test waits: the job runs until it is stopped.
UNTIL_STOPPED = 600


def track_stopped(job: Job, connection: Any) -> None:
    """The jobs' ``on_stopped`` callback, run in the worker's own process."""
    analytics().track(STOPPED_EVENT, {"job": job.id})


def track_killed(job: Job, retpid: Any, ret_val: Any, rusage: Any) -> None:
    """The worker's ``work_horse_killed_handler``, run in the worker's own process."""
    analytics().track(KILLED_EVENT, {"job": job.id})


def worker_with_killed_handler_argv(redis_url: str) -> list[str]:
    """``segment_rq.Worker`` with a ``work_horse_killed_handler``, which ``rq worker``
    has no option for."""
    code = (
        "import redis, segment_rq, tests.rq.test_stopped_jobs as handlers;"
        f"connection = redis.Redis.from_url({redis_url!r});"
        "segment_rq.Worker(['default'], connection=connection,"
        " work_horse_killed_handler=handlers.track_killed).work(logging_level='INFO')"
    )
    return [sys.executable, "-c", code]


def assert_for_the_visitor(message: dict[str, Any]) -> None:
    assert (message["userId"], message["anonymousId"]) == ("user-7", "anon-7")
    assert message["context"]["ip"] == "198.51.100.4"
    assert message["context"]["locale"] == "fr-FR"


def test_a_stopped_jobs_on_stopped_callback_acts_for_its_visitor(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    with bound(VISITOR):
        job = queue.enqueue(
            WORK, 1, UNTIL_STOPPED, on_stopped=Callback(f"{__name__}.track_stopped")
        )
    env = app_env(segment_collector.url, flush_interval=0.2)
    argv = rq_argv(redis_db, "segment_rq.Worker")
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        poll(lambda: job.get_status() == "started", timeout=30, what="the job started")
        send_stop_job_command(connection, job.id)
        [event] = segment_collector.wait_for(1, timeout=30, type="track", event=STOPPED_EVENT)
        assert worker.stop() == 0
    assert job.get_status() == "stopped"
    assert event["message"]["properties"] == {"job": job.id}
    assert_for_the_visitor(event["message"])


def test_a_work_horse_killed_handler_acts_for_the_jobs_visitor(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    queue = Queue(connection=redis.Redis.from_url(redis_db))
    with bound(VISITOR):
        job = queue.enqueue(TRACK_THEN_DIE, "oom")
    env = app_env(segment_collector.url, flush_interval=0.2)
    argv = worker_with_killed_handler_argv(redis_db)
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        [event] = segment_collector.wait_for(1, timeout=30, type="track", event=KILLED_EVENT)
        assert worker.stop() == 0
    assert job.get_status() == "failed"
    assert event["message"]["properties"] == {"job": job.id}
    assert_for_the_visitor(event["message"])
