"""``segment_rq.Queue`` in this process: what a job carries, and synchronous queues.

A synchronous queue (``is_async=False``, RQ's mode for tests and development)
runs the job as it is enqueued, here: bound to the job's visitor, as a worker
would run it. The queues use a real Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import segment_core
from segment_core import Client
from segment_core.scope import Analytics, analytics, bound, current
from segment_rq import META_KEY, Queue
from tests.request_thread import ANONYMOUS_ID, USER_AGENT, run_in_a_request_thread

pytestmark = pytest.mark.slow


def track_for_visitor(label: str) -> None:
    """A job: one event for whoever it runs for."""
    analytics().track("Visitor Job", {"label": label})


def track_with_own_id(label: str) -> None:
    """A job: one event, with an anonymous id of its own, for whoever it runs for."""
    analytics().track("Visitor Job", {"label": label}, anonymous_id="job-anon")


@pytest.fixture
def client(segment_collector: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The jobs' client: segment_core's default, as in a worker."""
    client = Client("rq-key", host=segment_collector.url, flush_interval=3600)
    monkeypatch.setattr(segment_core, "default_client", client)
    yield client
    client.shutdown(timeout=5)


def test_a_synchronous_queue_runs_the_job_for_its_visitor(
    client: Client, redis_db: str, segment_collector: Any
) -> None:
    queue = Queue(connection=redis.Redis.from_url(redis_db), is_async=False)
    snapshot = Analytics(user_id="user-9", context={"locale": "de-DE"}).snapshot()
    given = queue.enqueue(track_for_visitor, "given", meta={META_KEY: snapshot})
    caller = Analytics(client, user_id="user-10", anonymous_id="anon-10")
    with bound(caller):
        from_caller = queue.enqueue(track_for_visitor, "caller's")
        assert current() is caller
    assert current() is None  # unbound again once the job ran
    for job in (given, from_caller):
        assert job.get_status() == "finished", job.latest_result()
    assert client.flush(10)
    events = segment_collector.wait_for(2, timeout=10, type="track")
    by_label = {e["message"]["properties"]["label"]: e["message"] for e in events}
    assert by_label["given"]["userId"] == "user-9"
    assert by_label["given"]["context"]["locale"] == "de-DE"
    assert (by_label["caller's"]["userId"], by_label["caller's"]["anonymousId"]) == (
        "user-10",
        "anon-10",
    )


def test_a_job_enqueued_in_a_thread_given_a_flask_requests_context_carries_its_visitor(
    client: Client, redis_db: str, segment_collector: Any
) -> None:
    connection = redis.Redis.from_url(redis_db)

    def enqueue() -> tuple[str, str]:
        for_a_worker = Queue(connection=connection).enqueue(track_for_visitor, "worker's")
        run_here = Queue(connection=connection, is_async=False).enqueue(
            track_for_visitor, "run here"
        )
        return for_a_worker.id, run_here.get_status()

    queued_id, status = run_in_a_request_thread(client, enqueue)
    assert status == "finished"
    queued = Queue(connection=connection).fetch_job(queued_id)
    assert queued is not None
    carried = queued.meta[META_KEY]
    assert carried["anonymousId"] == ANONYMOUS_ID
    assert carried["context"]["userAgent"] == USER_AGENT
    assert client.flush(10)
    [event] = segment_collector.wait_for(1, timeout=10, type="track")
    assert event["message"]["properties"] == {"label": "run here"}
    assert event["message"]["anonymousId"] == ANONYMOUS_ID
    assert event["message"]["context"]["userAgent"] == USER_AGENT


@pytest.mark.parametrize("carried", [None, {"version": 99, "userId": "unreadable"}])
def test_a_synchronous_queue_runs_a_job_naming_no_visitor_for_none_not_the_caller_s(
    client: Client, redis_db: str, segment_collector: Any, carried: object
) -> None:
    # As a worker runs it: the caller's own segment_visitor wins, and one that names
    # no visitor, or none that can be read, leaves the job without one.
    queue = Queue(connection=redis.Redis.from_url(redis_db), is_async=False)
    caller = Analytics(client, user_id="user-11", anonymous_id="anon-11")
    with bound(caller):
        job = queue.enqueue(track_with_own_id, "none", meta={META_KEY: carried})
        assert current() is caller  # the caller's binding, back once the job ran
    assert job.get_status() == "finished", job.latest_result()
    assert client.flush(10)
    [event] = segment_collector.wait_for(1, timeout=10, type="track")
    message = event["message"]
    assert message["properties"] == {"label": "none"}
    assert message["anonymousId"] == "job-anon"
    assert "userId" not in message and "user-11" not in str(message)
