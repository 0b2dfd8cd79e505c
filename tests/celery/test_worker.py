"""Celery workers on a real Redis broker, delivering to the collector.

No eager mode and no fake broker: ``celery worker`` runs as a subprocess with
the prefork, threads or solo pool; the tests publish through Redis and wait for
the collector.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from segment_celery import HEADER, SegmentCelery
from segment_core import Client
from segment_core.scope import Analytics, bound
from tests.e2e.servers import app_env
from tests.jobs import (
    DONE,
    HOLD_UNTIL_EXIT,
    LOGGER_STATES,
    STOPPED,
    TASK_EVENT,
    WORKER_STOP_TIMEOUT,
)
from tests.request_thread import ANONYMOUS_ID, USER_AGENT, run_in_a_request_thread
from tests.workers import CELERY_READY, celery_argv, poll, running_worker

pytestmark = pytest.mark.slow

APP = "tests.celery.app"
VISITOR = Analytics(
    user_id="user-42",
    anonymous_id="anon-42",
    context={
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0 (test)",
        "locale": "en-GB",
        "page": {"path": "/checkout", "url": "https://shop.example/checkout"},
        "campaign": {"name": "spring"},
        "library": {"name": "not carried"},
    },
)


@pytest.fixture
def publisher(redis_db: str) -> Iterator[Celery]:
    """A Celery app in this process that publishes to the test's Redis."""
    app = Celery("publisher", broker=redis_db)
    app.conf.broker_connection_retry_on_startup = True
    SegmentCelery(app)
    yield app
    app.close()


@pytest.fixture
def flask_client(segment_collector: Any) -> Iterator[Client]:
    """The client of the Flask apps that publish from their requests' threads."""
    client = Client("flask-key", host=segment_collector.url)
    yield client
    client.shutdown(timeout=5)


def worker_env(collector_url: str, redis_url: str, **options: Any) -> dict[str, str]:
    env = app_env(collector_url, **options)
    env["TEST_REDIS_URL"] = redis_url
    return env


def test_a_task_runs_for_the_visitor_who_published_it(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path, flask_client: Client
) -> None:
    env = worker_env(segment_collector.url, redis_db)
    argv = celery_argv(APP, "--pool", "solo")
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        with bound(VISITOR):
            publisher.send_task(f"{APP}.track_for_visitor", args=("first",))
            publisher.send_task(f"{APP}.track_with_request", args=("bound task",))
        publisher.send_task(f"{APP}.work", args=(1,))  # outside a request: unbound
        run_in_a_request_thread(
            flask_client,
            lambda: publisher.send_task(f"{APP}.track_for_visitor", args=("request thread",)),
        )
        events = segment_collector.wait_for(5, timeout=30, type="track")
        assert worker.stop() == 0
    messages = {
        (e["message"].get("properties") or {}).get("label", "unbound"): e["message"] for e in events
    }
    assert set(messages) == {"first", "follow-up", "bound task", "unbound", "request thread"}
    from_thread = messages.pop("request thread")
    assert from_thread["anonymousId"] == ANONYMOUS_ID
    assert from_thread["context"]["userAgent"] == USER_AGENT
    for label in ("first", "follow-up", "bound task"):
        message = messages[label]
        assert message["userId"] == "user-42"
        assert message["anonymousId"] == "anon-42"
        context = message["context"]
        assert context["ip"] == "203.0.113.9"
        assert context["userAgent"] == "Mozilla/5.0 (test)"
        assert context["locale"] == "en-GB"
        assert context["page"]["url"] == "https://shop.example/checkout"
        assert context["campaign"] == {"name": "spring"}
        assert context["library"]["name"] == "segment-web"
    assert messages["unbound"]["userId"] == "job-1"
    assert "anonymousId" not in messages["unbound"]


# A chord finalizes the publishing app, which takes on the shared tasks other tests
# made (each test's own, under one name).
@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_a_chord_s_callback_runs_for_who_published_the_chord_not_its_last_task(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    from celery import chord

    publisher.conf.result_backend = redis_db
    others = [Analytics(user_id=f"user-{n}", anonymous_id=f"anon-{n}") for n in range(3)]

    def parts(prefix: str) -> list[Any]:
        return [
            publisher.signature(f"{APP}.track_part", args=(f"{prefix}-{n}",)).set(
                headers={HEADER: visitor.snapshot()}  # a job per user, each its own
            )
            for n, visitor in enumerate(others)
        ]

    env = worker_env(segment_collector.url, redis_db)
    argv = celery_argv(APP, "--pool", "threads", "--concurrency", "3")
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        summary = publisher.signature(f"{APP}.track_summary", args=("nightly",))
        chord(parts("nightly"), app=publisher)(summary)  # a batch published outside a request
        with bound(VISITOR):  # an admin's request publishes one
            chord(parts("requested"), app=publisher)(
                publisher.signature(f"{APP}.track_summary", args=("requested",))
            )
        # Nested: the inner chord's callback finishes a part of the outer one.
        inner = chord(parts("inner"), publisher.signature(f"{APP}.track_summary", args=("in",)))
        plain = publisher.signature(f"{APP}.track_part", args=("plain",)).set(
            headers={HEADER: Analytics(user_id="user-9").snapshot()}
        )
        outer = publisher.signature(f"{APP}.track_summary", args=("outer",))
        chord([inner, plain], app=publisher)(outer)
        events = segment_collector.wait_for(14, timeout=30, type="track")
        assert worker.stop() == 0
    by_label = {e["message"]["properties"]["label"]: e["message"] for e in events}
    nightly = by_label["nightly"]  # unbound, as its publisher
    assert (nightly.get("userId"), nightly["anonymousId"]) == (None, "unbound")
    assert by_label["requested"]["userId"] == "user-42"
    assert by_label["requested"]["properties"]["parts"] == [f"requested-{n}" for n in range(3)]
    for n in range(3):
        assert by_label[f"nightly-{n}"]["userId"] == f"user-{n}"
    for label in ("in", "outer"):  # unbound, as the nested chord's publisher
        assert by_label[label]["anonymousId"] == "unbound", label
    assert by_label["outer"]["properties"]["parts"] == ["in", "plain"]


def test_a_soft_time_limit_stops_a_task_that_tracks_in_a_loop(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    """Celery raises SoftTimeLimitExceeded into the task from a signal handler, here
    nearly always inside track() (in a slow before_send hook, with a spool): the
    task gets it, long before its hard time limit."""
    env = worker_env(segment_collector.url, redis_db, spool_dir=tmp_path / "spool")
    store = redis.Redis.from_url(redis_db)
    argv = celery_argv(APP, "--pool", "prefork", "--concurrency", "1")
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        for n in range(2):
            publisher.send_task(f"{APP}.track_until_stopped", args=(n,))
        poll(lambda: store.scard(STOPPED) == 2, timeout=30, what="both tasks stopped")
        segment_collector.wait_for(2, timeout=30, type="track", event="Loop Step")
        assert worker.stop() == 0
        log = worker.log()
    assert "is unusable" not in log  # the spool took no time limit for a disk failure


# Publishing finalizes the apps, which take on the shared tasks other tests made.
@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_only_the_app_set_up_carries_the_visitor(publisher: Celery, redis_db: str) -> None:
    """Another Celery app of the process (another team's broker) publishes nothing of
    the visitor: its workers would not use it, and it never opted in."""
    other = Celery("other-team", broker=redis_db, set_as_current=False)
    other.conf.update(task_default_queue="other-team", broker_connection_retry_on_startup=True)
    try:
        with bound(VISITOR):
            publisher.send_task(f"{APP}.work", args=(1,), queue="own-app")
            other.send_task("other_team.audit", args=(2,))
            other.signature("other_team.audit", args=(3,)).apply_async()
            publisher.signature(f"{APP}.work", args=(4,)).apply_async(queue="own-app")
    finally:
        other.close()
    store = redis.Redis.from_url(redis_db)
    headers = {
        queue: [json.loads(raw)["headers"] for raw in store.lrange(queue, 0, -1)]
        for queue in ("own-app", "other-team")
    }
    store.close()
    assert [h[HEADER]["userId"] for h in headers["own-app"]] == ["user-42", "user-42"]
    assert [HEADER in h for h in headers["other-team"]] == [False, False]


#: Publishes on an app set up and on another, with send_task wrapped before
#: segment_celery is imported (as Sentry's Celery integration, set up first, wraps it).
_WRAPPED_FIRST = """
import functools, json, sys
import redis
from celery import Celery

original = Celery.send_task
if sys.argv[2] == "wraps":
    @functools.wraps(original)
    def apply_async(*args, **kwargs):
        return original(*args, **kwargs)
else:  # a wrapper that does not say what it wraps
    def apply_async(*args, **kwargs):
        return original(*args, **kwargs)
Celery.send_task = apply_async

from segment_celery import HEADER, SegmentCelery
from segment_core import Client
from segment_core.scope import Analytics, bound

own = Celery("own", broker=sys.argv[1], set_as_current=False)
own.conf.update(task_default_queue="own-app")
SegmentCelery(own, client=Client("k", send=False))
other = Celery("other-team", broker=sys.argv[1], set_as_current=False)
other.conf.update(task_default_queue="other-team")
with bound(Analytics(user_id="user-42", anonymous_id="anon-42")):
    own.send_task("own.work")
    other.send_task("other_team.audit")
    other.signature("other_team.audit").apply_async()
store = redis.Redis.from_url(sys.argv[1])
print(json.dumps({
    queue: [HEADER in json.loads(raw)["headers"] for raw in store.lrange(queue, 0, -1)]
    for queue in ("own-app", "other-team")
}))
"""


@pytest.mark.parametrize("wrapper", ["wraps", "bare"])
def test_only_the_app_set_up_carries_the_visitor_when_send_task_was_wrapped_first(
    redis_db: str, wrapper: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPED_FIRST, redis_db, wrapper],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"own-app": [True], "other-team": [False, False]}


HOSTILE_SNAPSHOTS = [
    "not a snapshot",
    {"version": 1, "userId": ["a", "list"]},
    {"version": 99, "anonymousId": "a"},
    {"version": 1, "anonymousId": "a", "context": {"page": {"url": 7}}},
    {"version": 1, "anonymousId": "a" * 100_000},
    {"version": True, "anonymousId": "a"},
    ["version", 1],
]


def test_a_hostile_snapshot_is_logged_and_the_task_runs_unbound(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    env = worker_env(segment_collector.url, redis_db)
    argv = celery_argv(APP, "--pool", "solo")
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        for n, snapshot in enumerate(HOSTILE_SNAPSHOTS):
            publisher.send_task(f"{APP}.work", args=(n,), headers={HEADER: snapshot})
        events = segment_collector.wait_for(len(HOSTILE_SNAPSHOTS), timeout=30, type="track")
        assert worker.stop() == 0
        log = worker.log()
    assert sorted(e["message"]["userId"] for e in events) == sorted(
        f"job-{n}" for n in range(len(HOSTILE_SNAPSHOTS))
    )
    assert not any("anonymousId" in e["message"] for e in events)
    assert log.count("ignoring the visitor snapshot") == len(HOSTILE_SNAPSHOTS)
    assert redis.Redis.from_url(redis_db).scard(DONE) == len(HOSTILE_SNAPSHOTS)


def _run_then_stop_midway(
    collector: Any, publisher: Celery, redis_url: str, tmp_path: Path, *pool: str
) -> tuple[set[int], list[dict[str, Any]]]:
    """200 tasks, SIGTERM once 50 are done; the tasks finished and the events delivered."""
    total = 200
    env = worker_env(collector.url, redis_url, **HOLD_UNTIL_EXIT)
    store = redis.Redis.from_url(redis_url)
    argv = celery_argv(APP, *pool)
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        for n in range(total):
            publisher.send_task(f"{APP}.work", args=(n, 0.03))
        poll(lambda: store.scard(DONE) >= 50, timeout=60, what="50 tasks done")
        # Held in the processes' buffers: what arrives, the exit paths delivered.
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
        log = worker.log()
    done = {int(n) for n in store.smembers(DONE)}
    assert 50 <= len(done) < total, "the worker should stop with tasks still waiting"
    events = collector.wait_for(len(done), timeout=60, type="track", event=TASK_EVENT)
    summary = collector.summary()
    assert summary["duplicates"] == 0, summary
    assert summary["bad"] == 0, summary
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert set(numbers) == done, sorted(set(numbers) ^ done)
    assert max(numbers.values()) == 1
    assert "Traceback" not in log
    return done, events


def test_prefork_children_recycled_then_sigterm_deliver_every_event_once(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    pool = ("--pool", "prefork", "--concurrency", "2", "--max-tasks-per-child", "7")
    done, events = _run_then_stop_midway(segment_collector, publisher, redis_db, tmp_path, *pool)
    pids = Counter(e["message"]["properties"]["pid"] for e in events)
    # Children leave through os._exit after 7 tasks: many of them delivered.
    assert len(pids) >= len(done) // 7, pids
    assert max(pids.values()) <= 7, pids


@pytest.mark.parametrize(
    "pool",
    [("--pool", "threads", "--concurrency", "2"), ("--pool", "solo")],
    ids=["threads", "solo"],
)
def test_sigterm_to_a_worker_without_children_delivers_every_event_once(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path, pool: tuple[str, ...]
) -> None:
    _run_then_stop_midway(segment_collector, publisher, redis_db, tmp_path, *pool)


def test_children_recycled_by_max_memory_deliver_every_event_once(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    """``--max-memory-per-child 1`` (KiB): every child is replaced after each task."""
    total = 12
    env = worker_env(segment_collector.url, redis_db, **HOLD_UNTIL_EXIT)
    store = redis.Redis.from_url(redis_db)
    pool = ("--pool", "prefork", "--concurrency", "2", "--max-memory-per-child", "1")
    argv = celery_argv(APP, *pool)
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        for n in range(total):
            publisher.send_task(f"{APP}.work", args=(n,))
        # Delivered by each child as it is replaced, before the worker stops.
        events = segment_collector.wait_for(total, timeout=90, type="track", event=TASK_EVENT)
        assert store.scard(DONE) == total
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert set(numbers) == set(range(total)) and max(numbers.values()) == 1
    assert segment_collector.summary()["duplicates"] == 0
    assert len({e["message"]["properties"]["pid"] for e in events}) == total


@pytest.mark.parametrize("app", [APP, "tests.celery.plain_app"], ids=["SegmentCelery", "plain"])
def test_during_an_outage_recycled_children_leave_their_events_to_the_spool(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path, app: str
) -> None:
    """Each child recycled after one task would wait ``shutdown_timeout`` (60 s) for a
    collector answering 503; with a spool it leaves at the first failure, and the
    events are delivered once the collector answers again. So does a child of an app
    without ``SegmentCelery``, which delivers as it leaves."""
    total = 3
    store = redis.Redis.from_url(redis_db)
    env = worker_env(
        segment_collector.url, redis_db, shutdown_timeout=60, spool_dir=tmp_path / "spool"
    )
    pool = ("--pool", "prefork", "--concurrency", "1", "--max-tasks-per-child", "1")
    argv = celery_argv(app, *pool)
    segment_collector.faults({"status": 503, "seconds": 600})
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        for n in range(total):
            publisher.send_task(f"{app}.work", args=(n,))
        # Celery itself may take seconds to replace a child: far less than 60 s each.
        poll(lambda: store.scard(DONE) == total, timeout=40, what=f"{total} tasks done")
        assert segment_collector.summary()["requests"]["faulted"] >= 1
        segment_collector.clear_faults()
        publisher.send_task(f"{app}.work", args=(total,))
        events = segment_collector.wait_for(total + 1, timeout=60, type="track", event=TASK_EVENT)
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
        log = worker.log()
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert set(numbers) == set(range(total + 1)) and max(numbers.values()) == 1
    assert "stay in the spool" in log


def test_recycled_children_of_an_app_without_segment_celery_deliver(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    """An app migrated from analytics-python by its import alone: each prefork child
    leaves through os._exit() after one task, past atexit; its events arrive."""
    total = 3
    store = redis.Redis.from_url(redis_db)
    env = worker_env(segment_collector.url, redis_db, **HOLD_UNTIL_EXIT)
    plain = "tests.celery.plain_app"
    pool = ("--pool", "prefork", "--concurrency", "1", "--max-tasks-per-child", "1")
    with running_worker(
        "celery", celery_argv(plain, *pool), env=env, log_dir=tmp_path, ready=CELERY_READY
    ) as worker:
        for n in range(total):
            publisher.send_task(f"{plain}.work", args=(n,))
        poll(lambda: store.scard(DONE) == total, timeout=40, what=f"{total} tasks done")
        events = segment_collector.wait_for(total, timeout=30, type="track", event=TASK_EVENT)
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert numbers == Counter(range(total))
    assert len({e["message"]["properties"]["pid"] for e in events}) == total  # recycled


def test_what_the_app_tracks_as_an_idle_child_stops_is_delivered(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    """A child's first message comes from the app's own worker_process_shutdown
    receiver, after Celery read that signal's receivers: its exit delivers it."""
    env = worker_env(segment_collector.url, redis_db, **HOLD_UNTIL_EXIT)
    plain = "tests.celery.plain_app"
    pool = ("--pool", "prefork", "--concurrency", "2")
    with running_worker(
        "celery", celery_argv(plain, *pool), env=env, log_dir=tmp_path, ready=CELERY_READY
    ) as worker:
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
    events = segment_collector.wait_for(2, timeout=30, event="Pool Child Stopped")
    assert len({e["message"]["properties"]["pid"] for e in events}) == 2


@pytest.mark.parametrize(
    "options",
    # The test app turns SEGMENT_FLUSH_INTERVAL into a segment_flush_interval key: a
    # client of its own. Without, the default client, from the environment alone.
    [{"flush_interval": 1}, {}],
    ids=["segment_keys", "environment"],
)
def test_an_idle_worker_delivers_what_a_killed_child_left_in_the_spool(
    segment_collector: Any,
    publisher: Celery,
    redis_db: str,
    tmp_path: Path,
    options: dict[str, Any],
) -> None:
    """The OOM killer ends a child right after it tracked; no task comes after it."""
    env = worker_env(segment_collector.url, redis_db, spool_dir=tmp_path / "spool", **options)
    argv = celery_argv(APP, "--pool", "prefork", "--concurrency", "1")
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        publisher.send_task(f"{APP}.track_then_die", args=("oom",))
        worker.wait_for_log(r"WorkerLostError|SIGKILL")
        events = segment_collector.wait_for(1, timeout=30, type="track", event="Killed Task")
        assert worker.stop() == 0
    assert [e["message"]["properties"]["label"] for e in events] == ["oom"]


@pytest.mark.parametrize(
    "pool",
    [
        ("--pool", "solo"),
        ("--pool", "threads", "--concurrency", "2"),
        ("--pool", "prefork", "--concurrency", "1", "--max-tasks-per-child", "1"),
    ],
    ids=["solo", "threads", "prefork-recycled"],
)
@pytest.mark.parametrize("how", ["start_thread", "thread"])
def test_what_a_tasks_thread_tracks_as_the_worker_stops_is_delivered(
    segment_collector: Any,
    publisher: Celery,
    redis_db: str,
    tmp_path: Path,
    pool: tuple[str, ...],
    how: str,
) -> None:
    """The task returns, leaving a thread (start_thread()'s, or a plain one) 3 s of
    work, and the worker stops at once (and a child recycled after one task leaves
    through os._exit)."""
    env = worker_env(segment_collector.url, redis_db, **HOLD_UNTIL_EXIT)
    store = redis.Redis.from_url(redis_db)
    argv = celery_argv(APP, *pool)
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        with bound(VISITOR):
            publisher.send_task(f"{APP}.track_then_finish_in_a_thread", args=("receipt", 3.0, how))
        poll(lambda: store.sismember(DONE, "receipt") == 1, timeout=30, what="the task done")
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
        log = worker.log()
    # Held in the buffer until the exit: what arrives, the exit delivered.
    events = segment_collector.wait_for(2, timeout=10, type="track")
    assert sorted(e["message"]["event"] for e in events) == ["Task Returned", "Thread Finished"]
    assert {e["message"]["userId"] for e in events} == {"user-42"}
    assert "dropped" not in log


@pytest.mark.parametrize(
    "pool",
    [("--pool", "prefork", "--concurrency", "1"), ("--pool", "solo")],
    ids=["prefork", "solo"],
)
def test_the_apps_own_receivers_track_for_the_visitor_and_at_shutdown(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path, pool: tuple[str, ...]
) -> None:
    env = worker_env(segment_collector.url, redis_db)
    argv = celery_argv("tests.celery.receivers_app", *pool)
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        with bound(VISITOR):
            publisher.send_task(f"{APP}.track_with_request", args=("bound task",))
        segment_collector.wait_for(1, timeout=30, type="track", event="Task Finished")
        assert worker.stop() == 0
        log = worker.log()
    stopped = ["Worker Stopped"] + (["Child Stopped"] if "prefork" in pool else [])
    events = segment_collector.wait_for(2 + len(stopped), timeout=30, type="track")
    by_event = {e["message"]["event"]: e["message"] for e in events}
    assert sorted(by_event) == sorted(["Visitor Task", "Task Finished", *stopped])
    assert by_event["Task Finished"]["userId"] == "user-42"
    assert by_event["Task Finished"]["properties"] == {"task": f"{APP}.track_with_request"}
    assert "dropped" not in log


@pytest.mark.parametrize(
    "pool",
    [("--pool", "prefork", "--concurrency", "1"), ("--pool", "solo")],
    ids=["prefork", "solo"],
)
def test_a_worker_whose_app_configures_logging_keeps_the_library_s_warnings(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path, pool: tuple[str, ...]
) -> None:
    # A setup_logging receiver's dictConfig turns off the loggers that exist: the
    # worker's delivery failures would go unseen.
    env = worker_env(segment_collector.url, redis_db)
    argv = celery_argv("tests.celery.logging_app", *pool)
    store = redis.Redis.from_url(redis_db)
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        publisher.send_task("tests.celery.logging_app.record_logger_state")
        poll(lambda: store.llen(LOGGER_STATES) == 1, timeout=30, what="the task")
        assert worker.stop() == 0
    assert store.lrange(LOGGER_STATES, 0, -1) == [b"on"]
