"""Reading every thread's frame (a work-horse's worker, gunicorn's, pytest's session)
must not deadlock: before Python 3.12, ``sys._current_frames()`` can start a
collection while it holds the interpreter's list of threads, and a ``threading.local``
freed then takes that lock again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Threads whose frames change all the time, and threading.local objects freed by the
# cycle collector alone, which runs at every allocation: sys._current_frames() in
# this loop waits for itself for good within a few thousand rounds.
CHURN = """
import gc, sys, threading

from segment_core._frames import current_frames

stop = threading.Event()


def work(n):
    return n + 1


def spin():
    while not stop.is_set():
        for i in range(1000):
            work(i)


for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
gc.set_threshold(1, 1, 1)


class Holder:
    pass


def read():
    return current_frames()


for _ in range(50_000):
    holder = Holder()
    holder.local = threading.local()
    holder.me = holder
    del holder
    assert threading.main_thread().ident in read()
stop.set()
print("done")
"""


def test_the_frames_of_every_thread_are_read_while_locals_are_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHURN], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert (done.returncode, done.stdout.strip()) == (0, "done"), done.stderr[-2000:]


def test_the_library_reads_them_only_through_the_guarded_reader() -> None:
    for path in ROOT.glob("segment_*/**/*.py"):
        if path.name != "_frames.py":
            assert "sys._current_frames(" not in path.read_text(), path
