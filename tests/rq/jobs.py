"""Jobs for the RQ worker tests. Each records what it did in the Redis set ``done``
*after* tracking, so a test can compare the jobs that finished with the events."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rq import get_current_job

import segment_core
from segment_core import Client
from segment_core.scope import analytics, start_thread
from tests.e2e.apps.options import client_options
from tests.jobs import DONE, TASK_EVENT

# The worker's client, from SEGMENT_WRITE_KEY, SEGMENT_HOST and SEGMENT_<OPTION>.
segment_core.default_client = Client(**client_options())


def _done(n: int) -> None:
    job = get_current_job()
    assert job is not None
    job.connection.sadd(DONE, n)


def work(n: int, pause: float = 0.0) -> None:
    if pause:
        time.sleep(pause)
    segment_core.track(f"job-{n}", TASK_EVENT, {"n": n, "pid": os.getpid()})
    _done(n)


def work_then_raise(n: int, pause: float = 0.0) -> None:
    work(n, pause)
    raise RuntimeError(f"job {n} fails after tracking, on purpose")


def track_for_visitor(label: str) -> None:
    analytics().track("Visitor Job", {"label": label})


def track_then_finish_in_a_thread(label: str, seconds: float, how: str = "start_thread") -> None:
    """Tracks, and leaves a thread that tracks ``seconds`` later, after the job
    returned: started with ``start_thread``, as a plain thread, or in an executor."""
    user_id = analytics().user_id

    def finish() -> None:
        threading.Event().wait(seconds)  # work that goes on after the job
        segment_core.track(user_id, "Thread Finished", {"label": label})

    if how == "start_thread":
        start_thread(finish)
    elif how == "thread":
        threading.Thread(target=finish).start()
    else:
        executor = ThreadPoolExecutor(1)
        executor.submit(finish)
        executor.shutdown(wait=False)
    analytics().track("Job Returned", {"label": label})


def track_then_die(label: str) -> None:
    """Tracks, then dies at once as the OOM killer would end it: SIGKILL, no exit path."""
    segment_core.track("killed", "Killed Job", {"label": label})
    os.kill(os.getpid(), signal.SIGKILL)


def _enrich(message: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.05)  # a lookup to enrich the message: most of the job's time
    return message


@functools.cache
def _enriching_client() -> Client:
    return Client(**client_options(), before_send=_enrich)


def track_until_stopped(n: int) -> None:
    """Tracks in a loop until its time limit (``job_timeout``) stops it."""
    client = _enriching_client()
    while True:
        client.track(f"job-{n}", "Loop Step", {"n": n})
