"""RQ workers (``rq worker --worker-class segment_rq.Worker``) on a real Redis.

RQ forks a work-horse per job, which leaves through ``os._exit()``: each must
deliver its events before it goes, jobs that raise included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import rq
from rq.exceptions import StopRequested

import segment_rq
from segment_core.scope import Analytics, bound
from segment_rq import META_KEY, Queue
from tests.e2e.servers import app_env
from tests.jobs import DONE, HOLD_UNTIL_EXIT, TASK_EVENT, WORKER_STOP_TIMEOUT
from tests.workers import poll, running_worker

pytestmark = pytest.mark.slow

RQ_READY = r"Listening on"
# By name: the jobs module configures the worker's client when imported.
WORK = "tests.rq.jobs.work"
WORK_THEN_RAISE = "tests.rq.jobs.work_then_raise"
TRACK_FOR_VISITOR = "tests.rq.jobs.track_for_visitor"
TRACK_UNTIL_STOPPED = "tests.rq.jobs.track_until_stopped"
TRACK_THEN_DIE = "tests.rq.jobs.track_then_die"
TRACK_THEN_FINISH_IN_A_THREAD = "tests.rq.jobs.track_then_finish_in_a_thread"
VISITOR = Analytics(
    user_id="user-7",
    anonymous_id="anon-7",
    context={"ip": "198.51.100.4", "userAgent": "Mozilla/5.0 (rq)", "locale": "fr-FR"},
)


def waiting_for_a_job(connection: redis.Redis) -> bool:
    """Whether a worker is blocked on its queues. RQ's own worker raises from its
    SIGTERM handler wherever it is, and exits 1 when that is between a command and
    its reply (``segment_rq``'s workers do not): stop it while it waits."""
    blocking = {"blpop", "blmove"}  # by RQ's version
    return any(client.get("cmd") in blocking for client in connection.client_list())


def rq_argv(redis_url: str, worker_class: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rq.cli",
        "worker",
        "--url",
        redis_url,
        "--worker-class",
        worker_class,
        "--logging_level",
        "INFO",
    ]


@pytest.mark.parametrize(
    "worker_class",
    [
        "segment_rq.Worker",
        "segment_rq.SimpleWorker",
        pytest.param(
            "segment_rq.SpawnWorker",
            marks=pytest.mark.skipif(
                not hasattr(segment_rq, "SpawnWorker"), reason="RQ before 2 spawns no work-horse"
            ),
        ),
    ],
)
def test_a_job_runs_for_the_visitor_who_enqueued_it(
    segment_collector: Any, redis_db: str, tmp_path: Path, worker_class: str
) -> None:
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    with bound(VISITOR):
        queue.enqueue(TRACK_FOR_VISITOR, "bound")
        kept = queue.enqueue(TRACK_FOR_VISITOR, "own meta", meta={"order": 5})
    queue.enqueue(WORK, 3)
    assert queue.fetch_job(kept.id).meta["order"] == 5  # type: ignore[union-attr]
    hostile = queue.enqueue(WORK, 4, meta={META_KEY: {"version": 1, "userId": {}}})
    assert hostile.meta[META_KEY] == {"version": 1, "userId": {}}
    env = app_env(segment_collector.url, flush_interval=0.2)
    argv = rq_argv(redis_db, worker_class)
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        events = segment_collector.wait_for(4, timeout=30, type="track")
        assert worker.stop() == 0
        log = worker.log()
    by_label = {
        (e["message"].get("properties") or {}).get("label") or e["message"]["userId"]: e["message"]
        for e in events
    }
    assert set(by_label) == {"bound", "own meta", "job-3", "job-4"}
    for label in ("bound", "own meta"):
        message = by_label[label]
        assert (message["userId"], message["anonymousId"]) == ("user-7", "anon-7")
        assert message["context"]["ip"] == "198.51.100.4"
        assert message["context"]["userAgent"] == "Mozilla/5.0 (rq)"
        assert message["context"]["locale"] == "fr-FR"
    assert "anonymousId" not in by_label["job-3"]
    assert "anonymousId" not in by_label["job-4"]
    assert log.count("ignoring the visitor snapshot") == 1  # the worker's process says none


@pytest.mark.skipif(
    not hasattr(segment_rq, "SpawnWorker"), reason="RQ before 2 spawns no work-horse"
)
def test_spawned_work_horses_send_with_the_client_of_the_worker_s_settings_module(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    """A spawned work-horse imports neither ``rq worker -c``'s module nor Django's
    settings: it builds the worker's client from the options the worker gave it."""
    queue = Queue(connection=redis.Redis.from_url(redis_db))
    with bound(VISITOR):
        queue.enqueue("tests.rq.spawned_jobs.track_for_visitor", "bound")
    queue.enqueue("tests.rq.spawned_jobs.track_as", "job-user")
    env = {
        name: value
        for name, value in app_env(segment_collector.url).items()
        if not name.startswith("SEGMENT_")
    }
    env["RQ_TEST_COLLECTOR"] = segment_collector.url
    argv = [*rq_argv(redis_db, "segment_rq.SpawnWorker"), "-c", "tests.rq.spawn_settings"]
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        events = segment_collector.wait_for(2, timeout=30, type="track")
        assert worker.stop() == 0
        log = worker.log()
    messages = {e["message"]["properties"]["label"]: e["message"] for e in events}
    assert set(messages) == {"bound", "job-user"}
    assert {m["properties"]["client"] for m in messages.values()} == {"the worker's"}
    assert (messages["bound"]["userId"], messages["bound"]["anonymousId"]) == ("user-7", "anon-7")
    assert messages["job-user"]["userId"] == "job-user"
    assert "no write key" not in log
    # The one option that cannot be pickled is named, once for both horses.
    assert log.count("without the worker's on_error, which cannot be pickled") == 1


@pytest.mark.parametrize("how", ["start_thread", "thread", "executor"])
def test_what_a_jobs_thread_tracks_after_the_job_returned_is_delivered_by_its_work_horse(
    segment_collector: Any, redis_db: str, tmp_path: Path, how: str
) -> None:
    """The work-horse leaves through os._exit() once the job returned, where the
    interpreter waits for no thread: it waits for the job's threads (of start_thread,
    plain, an executor's), as the interpreter would have."""
    queue = Queue(connection=redis.Redis.from_url(redis_db))
    with bound(VISITOR):
        queue.enqueue(TRACK_THEN_FINISH_IN_A_THREAD, "receipt", 2.0, how)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    argv = rq_argv(redis_db, "segment_rq.Worker")
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        # Held in the buffer until the work-horse exits: what arrives, its exit delivered.
        events = segment_collector.wait_for(2, timeout=30, type="track")
        assert worker.stop() == 0
    assert sorted(e["message"]["event"] for e in events) == ["Job Returned", "Thread Finished"]
    assert {e["message"]["userId"] for e in events} == {"user-7"}


def test_job_timeout_stops_a_job_that_tracks_in_a_loop(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    """RQ raises JobTimeoutException into the job from SIGALRM, here nearly always
    inside track() (in a slow before_send hook, with a spool): it ends the job, and
    the SimpleWorker goes on to the next one."""
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    looping = [queue.enqueue(TRACK_UNTIL_STOPPED, n, job_timeout=1) for n in range(2)]
    queue.enqueue(WORK, 9)
    env = app_env(segment_collector.url, flush_interval=0.2, spool_dir=tmp_path / "spool")
    argv = rq_argv(redis_db, "segment_rq.SimpleWorker")
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        segment_collector.wait_for(1, timeout=60, type="track", event=TASK_EVENT)
        assert worker.stop() == 0
        log = worker.log()
    for job in looping:
        job.refresh()
        assert job.get_status() == "failed"
        result = job.latest_result()
        assert result is not None and "JobTimeoutException" in (result.exc_string or "")
    assert "is unusable" not in log  # the spool took no time limit for a disk failure
    steps = segment_collector.events(type="track", event="Loop Step", limit=1000)
    assert {e["message"]["properties"]["n"] for e in steps} == {0, 1}


def test_100_jobs_then_sigterm_deliver_every_event_once(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    total = 100
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    failing = set(range(5, total, 10))
    for n in range(total):
        queue.enqueue(WORK_THEN_RAISE if n in failing else WORK, n, 0.02)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    argv = rq_argv(redis_db, "segment_rq.Worker")
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        poll(lambda: connection.scard(DONE) >= 30, timeout=60, what="30 jobs done")
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
        log = worker.log()
    done = {int(n) for n in connection.smembers(DONE)}
    assert 30 <= len(done) < total, "the worker should stop with jobs still waiting"
    assert done & failing, "some of the jobs that raise must have run"
    assert log.count("fails after tracking, on purpose") >= len(done & failing)
    events = segment_collector.wait_for(len(done), timeout=60, type="track", event=TASK_EVENT)
    summary = segment_collector.summary()
    assert summary["duplicates"] == 0 and summary["bad"] == 0, summary
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert set(numbers) == done, sorted(set(numbers) ^ done)
    assert max(numbers.values()) == 1
    # One work-horse per job, each leaving through os._exit after delivering.
    assert len({e["message"]["properties"]["pid"] for e in events}) == len(done)


def test_work_horses_of_the_plain_rq_worker_deliver_as_they_exit(
    segment_collector: Any, redis_db: str, tmp_path: Path
) -> None:
    """An app migrated from analytics-python by its import alone runs ``rq worker``:
    each work-horse leaves through os._exit(), past atexit; its events arrive."""
    total = 3
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    for n in range(total):
        queue.enqueue(WORK_THEN_RAISE if n == 1 else WORK, n)
    env = app_env(segment_collector.url, **HOLD_UNTIL_EXIT)
    argv = rq_argv(redis_db, "rq.Worker")
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        poll(lambda: connection.scard(DONE) == total, timeout=60, what=f"{total} jobs done")
        events = segment_collector.wait_for(total, timeout=30, type="track", event=TASK_EVENT)
        poll(lambda: waiting_for_a_job(connection), timeout=30, what="the worker waiting")
        assert worker.stop(signal.SIGTERM, WORKER_STOP_TIMEOUT) == 0
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert numbers == Counter(range(total))
    assert len({e["message"]["properties"]["pid"] for e in events}) == total  # one per job


@pytest.mark.parametrize("worker_class", ["segment_rq.Worker", "rq.Worker"])
def test_during_an_outage_a_spool_keeps_each_horses_events_and_the_worker_moves_on(
    segment_collector: Any, redis_db: str, tmp_path: Path, worker_class: str
) -> None:
    """Each horse would wait ``shutdown_timeout`` (30 s) for a collector answering 503;
    with a spool it leaves its events on disk at the first failure, for a later one.
    So does a horse of the plain ``rq worker``, which delivers as it leaves."""
    total = 4
    connection = redis.Redis.from_url(redis_db)
    queue = Queue(connection=connection)
    segment_collector.faults({"status": 503, "seconds": 600})
    for n in range(total):
        queue.enqueue(WORK, n)
    spool = tmp_path / "spool"
    env = app_env(segment_collector.url, shutdown_timeout=30, spool_dir=spool)
    argv = rq_argv(redis_db, worker_class)
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        poll(lambda: connection.scard(DONE) == total, timeout=20, what=f"{total} jobs done")
        assert segment_collector.summary()["requests"]["faulted"] >= 1
        segment_collector.clear_faults()
        queue.enqueue(WORK, total)  # its horse delivers what the others left, and its own
        events = segment_collector.wait_for(total + 1, timeout=30, type="track", event=TASK_EVENT)
        if worker_class == "rq.Worker":
            poll(lambda: waiting_for_a_job(connection), timeout=30, what="the worker waiting")
        assert worker.stop() == 0
        log = worker.log()
    numbers = Counter(e["message"]["properties"]["n"] for e in events)
    assert set(numbers) == set(range(total + 1)) and max(numbers.values()) == 1
    assert "stay in the spool" in log


@pytest.mark.parametrize("worker_class", ["segment_rq.Worker", "segment_rq.SimpleWorker"])
def test_an_idle_worker_delivers_what_a_killed_process_left_in_the_spool(
    segment_collector: Any, redis_db: str, tmp_path: Path, worker_class: str
) -> None:
    """The OOM killer ends a work-horse (or a worker, then restarted) right after it
    tracked; no job comes after it."""
    queue = Queue(connection=redis.Redis.from_url(redis_db))
    queue.enqueue(TRACK_THEN_DIE, "oom")
    env = app_env(segment_collector.url, spool_dir=tmp_path / "spool")
    argv = rq_argv(redis_db, worker_class)
    if worker_class == "segment_rq.SimpleWorker":  # the job kills the worker itself
        with running_worker("rq-killed", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as killed:
            killed.process.wait(30)
    with running_worker("rq", argv, env=env, log_dir=tmp_path, ready=RQ_READY) as worker:
        events = segment_collector.wait_for(1, timeout=30, type="track", event="Killed Job")
        assert worker.stop() == 0
    assert [e["message"]["properties"]["label"] for e in events] == ["oom"]


@pytest.mark.parametrize("worker_class", [segment_rq.Worker, segment_rq.SimpleWorker])
def test_a_worker_stopped_between_a_command_and_its_reply_still_registers_its_death(
    redis_db: str, worker_class: type[rq.Worker]
) -> None:
    """RQ stops an idle worker by raising from its SIGTERM handler, at whatever point
    the worker is; a reply not read yet goes back to the pool with its connection.
    The worker's last commands (registering its death) must not read it as theirs."""
    connection = redis.Redis.from_url(redis_db)
    worker = worker_class(["default"], connection=connection)
    worker.register_birth()
    assert worker.key.encode() in connection.smembers("rq:workers")
    pool = connection.connection_pool
    interrupted = pool.get_connection()
    interrupted.send_command("BLPOP", "rq:queue:nothing-comes", 1)  # its reply comes later
    pool.release(interrupted)
    worker.teardown()
    assert worker.key.encode() not in connection.smembers("rq:workers")
    assert connection.hget(worker.key, "death") is not None


@pytest.mark.parametrize("worker_class", [segment_rq.Worker, segment_rq.SimpleWorker])
def test_a_stop_request_lost_in_a_finalizer_still_stops_the_idle_worker(
    redis_db: str, worker_class: type[rq.Worker]
) -> None:
    """RQ's SIGTERM handler raises StopRequested into whatever runs: a redis-py
    ``__del__`` the garbage collector ran swallows it, and the worker would wait for
    a job again, for up to its dequeue timeout (405 s), before it stopped."""
    connection = redis.Redis.from_url(redis_db)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = worker_class(["default"], connection=connection)
    connection.config_resetstat()
    try:
        with contextlib.suppress(StopRequested):  # raised, then lost in a finalizer
            worker.request_stop(signal.SIGTERM, None)
        worker.work(max_idle_time=5)  # (not 405 s, were it to wait)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    waits = {"cmdstat_blmove", "cmdstat_blpop", "cmdstat_brpoplpush"}
    assert waits.isdisjoint(connection.info("commandstats")), "it waited for a job"


@pytest.mark.parametrize("worker_class", [segment_rq.Worker, segment_rq.SimpleWorker])
def test_the_command_thread_ends_with_the_reply_to_unsubscribe(
    redis_db: str, worker_class: type[rq.Worker]
) -> None:
    """RQ's thread that listens for commands waits up to 60 s for a message. Woken
    by the reply to UNSUBSCRIBE before it was told to stop, it waited again, and
    the worker's stop with it (redis-py 8.2 joins it): a minute after a SIGTERM."""
    connection = redis.Redis.from_url(redis_db)
    worker = worker_class(["default"], connection=connection)
    worker.subscribe()
    pubsub = worker.pubsub
    assert pubsub is not None
    send_unsubscribe = pubsub.unsubscribe

    def unsubscribe_and_let_the_thread_read_the_reply(*args: Any) -> Any:
        sent = send_unsubscribe(*args)
        poll(lambda: not pubsub.subscribed, timeout=10, what="the thread read the reply")
        return sent

    pubsub.unsubscribe = unsubscribe_and_let_the_thread_read_the_reply  # type: ignore[method-assign]
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(30)
    assert not stopping.is_alive(), "the command thread waited for a message after it"
    connection.close()


def stop_own_worker() -> str:
    """A job that asks its own worker (in this process) to stop, as SIGTERM does."""
    os.kill(os.getpid(), signal.SIGTERM)
    return "done"


def test_a_worker_stopped_during_a_job_counts_it_as_done(redis_db: str) -> None:
    # The stop is seen before the worker waits for the next job, not before the
    # job just done is counted: work() answers whether a job was done.
    connection = redis.Redis.from_url(redis_db)
    queue = segment_rq.Queue(connection=connection)
    job = queue.enqueue(stop_own_worker)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = segment_rq.SimpleWorker([queue], connection=connection)
    try:
        assert worker.work(max_idle_time=5) is True
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    result = job.latest_result()
    assert result is not None and result.return_value == "done"
    connection.close()
