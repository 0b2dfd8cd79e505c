"""RQ's two-step enqueue on ``segment_rq.Queue``: a job built with ``Job.create``,
then given to ``enqueue_job`` or ``schedule_job``, carries the visitor as
``enqueue`` does. The queues use a real Redis; the jobs run on a real worker.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.job import Job

from segment_core.scope import bound
from segment_rq import META_KEY, Queue
from tests.e2e.servers import app_env
from tests.rq.test_worker import RQ_READY, TRACK_FOR_VISITOR, VISITOR, rq_argv
from tests.workers import running_worker

pytestmark = pytest.mark.slow


def created(connection: redis.Redis, label: str, **options: Any) -> Job:
    return Job.create(TRACK_FOR_VISITOR, args=(label,), connection=connection, **options)


def test_a_job_created_then_enqueued_or_scheduled_runs_for_its_visitor(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    with bound(VISITOR):
        queue.enqueue_job(created(connection, "enqueued"))
        queue.schedule_job(created(connection, "scheduled"), datetime.now(timezone.utc))
    env = app_env(segment_collector.url, flush_interval=0.2)
    argv = [*rq_argv(redis_db, "segment_rq.Worker"), "--with-scheduler"]
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        events = segment_collector.wait_for(2, timeout=30, type="track")
        assert worker.stop() == 0
    by_label = {e["message"]["properties"]["label"]: e["message"] for e in events}
    assert set(by_label) == {"enqueued", "scheduled"}
    for message in by_label.values():
        assert (message["userId"], message["anonymousId"]) == ("user-7", "anon-7")
        assert message["context"]["ip"] == "198.51.100.4"
        assert message["context"]["locale"] == "fr-FR"


def test_the_snapshot_a_job_carries_when_created_first_or_enqueued_many(
    redis_db: str,
) -> None:
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    own_meta = {"order": 5}
    given = {"version": 1, "userId": "user-9"}
    with bound(VISITOR):
        with_meta = queue.enqueue_job(created(connection, "own meta", meta=own_meta))
        with_visitor = queue.enqueue_job(created(connection, "given", meta={META_KEY: given}))
        [many] = queue.enqueue_many([Queue.prepare_data(TRACK_FOR_VISITOR, ("many",))])
    unbound = queue.enqueue_job(created(connection, "unbound"))

    def stored_meta(job: Job) -> dict[str, Any]:
        fetched = queue.fetch_job(job.id)
        assert fetched is not None
        return fetched.meta

    assert stored_meta(with_meta)["order"] == 5
    assert stored_meta(with_meta)[META_KEY]["userId"] == "user-7"
    assert own_meta == {"order": 5}  # the caller's dict is left as it was
    assert stored_meta(with_visitor)[META_KEY] == given
    assert stored_meta(many)[META_KEY]["userId"] == "user-7"
    assert META_KEY not in stored_meta(unbound)
