"""gunicorn's ``worker_exit`` hook and the exit that follows it share one ``shutdown_timeout``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: A worker's last moments: the hook runs while a thread of the app still works; the
#: interpreter waits for that thread, then runs ``atexit``.
HOOK_WHILE_AN_APP_THREAD_RUNS = """
import sys, threading, time
from segment_core import Client
from segment_core.lifecycle import worker_exit

client = Client("k", host=sys.argv[1], shutdown_timeout=4.0, flush_at=2500, flush_interval=3600)
client.track("u1", "Held")
hook_done = threading.Event()


def app_work():
    hook_done.wait(60)
    client.track("u1", "After the hook")


threading.Thread(target=app_work).start()
print(time.monotonic(), flush=True)
worker_exit(server=None, worker=None)  # as gunicorn calls it in the worker
hook_done.set()
"""


def test_the_exit_after_a_worker_exit_hook_that_ran_out_of_time_does_not_wait_again(
    segment_collector: Any,
) -> None:
    # Segment answers 503 throughout: the hook's delivery runs out of its 4 s, and
    # the exit gives up at once on what is left. Waiting again would take 8 s.
    segment_collector.faults({"status": 503, "seconds": 120})
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", HOOK_WHILE_AN_APP_THREAD_RUNS, segment_collector.url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = process.communicate(timeout=60)
        ended = time.monotonic()
        summary = segment_collector.summary()
    finally:
        segment_collector.clear_faults()
    assert process.returncode == 0, err
    assert ended - float(out) < 6.5, err
    assert summary["requests"]["faulted"] > 0, summary
    assert summary["total"] == 0, summary
    assert "shut down with 2 message(s) undelivered" in err, err
