"""gunicorn's ``worker_exit`` hook and the exit that follows it share one ``shutdown_timeout``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

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


#: A worker gunicorn recycles (it served its ``max_requests``) during an outage.
RECYCLED_DURING_AN_OUTAGE = """
import sys, threading, time
from types import SimpleNamespace
from segment_core import Client
from segment_core.lifecycle import worker_exit

client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2], shutdown_timeout=60)
for i in range(5):
    client.track("u1", "Held", {"i": i})
hook_done = threading.Event()
if sys.argv[3] == "gthread":  # its request threads, not daemons, still end after the hook
    threading.Thread(target=hook_done.wait, args=(60,)).start()
started = time.monotonic()
worker_exit(server=None, worker=SimpleNamespace(pid=None, nr=20, max_requests=20))
print(time.monotonic() - started, flush=True)
hook_done.set()
"""


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_a_recycled_worker_leaves_what_a_failing_segment_did_not_take_to_its_spool(
    segment_collector: Any, tmp_path: Path, worker_class: str
) -> None:
    # Its replacement starts only once it ended: it must not wait out 60 s for a
    # Segment that answers 503. The next process of the spool delivers it.
    spool = tmp_path / "spool"
    segment_collector.faults({"status": 503, "seconds": 120})
    try:
        recycled = subprocess.run(
            [
                *(sys.executable, "-c", RECYCLED_DURING_AN_OUTAGE),
                *(segment_collector.url, str(spool), worker_class),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        segment_collector.clear_faults()
    assert recycled.returncode == 0, recycled.stderr
    assert float(recycled.stdout) < 30, recycled.stderr
    assert "5 Segment message(s) stay in the spool" in recycled.stderr
    replacement = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from segment_core import Client; "
            "Client('k', host=sys.argv[1], spool_dir=sys.argv[2]).flush(30)",
            segment_collector.url,
            str(spool),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replacement.returncode == 0, replacement.stderr
    events = segment_collector.wait_for(5, timeout=30, type="track")
    assert sorted(e["message"]["properties"]["i"] for e in events) == [0, 1, 2, 3, 4]
