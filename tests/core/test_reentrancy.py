"""The client called again from inside itself: a finalizer the garbage collector runs,
a signal handler, a log handler, a hook on the sender thread."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.receiver import Fault, Receiver

ROOT = Path(__file__).resolve().parents[2]
#: Far more than any of these tests takes: past it, a thread is taken as hung.
HUNG = 60.0
#: A hook's own wait, far from a sender thread's: it must not take it.
HOOK_WAIT = 10.0


FINALIZERS = """
import gc, sys, threading, time
from segment_core import Client

host, spool, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = {"spool_dir": spool} if spool else {}
client = Client("k", host=host, flush_interval=5, max_queue_size=1_000_000, **options)
ended = []


class Session:  # in a reference cycle: freed by the garbage collector, at any allocation
    def __init__(self):
        self.me = self

    def __del__(self):
        ended.append(1)
        client.track("u", "Session Ended")


def run():
    gc.set_threshold(50)  # (a busy app's collections: often)
    for _ in range(calls):
        Session()
        client.track("u", "Page Viewed")
        client.flush(0)


threads = [threading.Thread(target=run) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
# A collection a sender thread began may still be running finalizers (and a
# collect() here returns at once meanwhile): wait for every one of them.
deadline = time.monotonic() + 60
while len(ended) < 4 * calls and time.monotonic() < deadline:
    gc.collect()
    time.sleep(0.01)
delivered = client.flush(60)
stats = client.stats()
counted = stats["accepted"] == stats["sent"] == 8 * calls == 4 * calls + len(ended)
print(delivered, counted, stats["pending"], stats["failed"], len(stats["dropped"]), flush=True)
"""


@pytest.mark.parametrize("spooled", [False, True], ids=["in memory", "spooled"])
def test_finalizers_run_by_the_garbage_collector_inside_the_client_may_track(
    receiver: Receiver, tmp_path: Path, spooled: bool
) -> None:
    # Inside the spool's lock, a finalizer's message stays in memory: never written
    # into the middle of another's record.
    spool = str(tmp_path / "spool") if spooled else ""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FINALIZERS), receiver.url, spool, "20000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HUNG,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True", "0", "0", "0"]


SIGNALS = """
import signal, sys
from segment_core import Client

client = Client("k", host=sys.argv[1], flush_interval=0)
handled = 0


def graceful(signum, frame):  # an app's own handler: track, flush
    global handled
    handled += 1
    client.track("ops", "Signal Handled")
    client.flush(0)


signal.signal(signal.SIGALRM, graceful)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
for _ in range(20000):
    client.track("u", "Page Viewed")
    client.flush(0)
signal.setitimer(signal.ITIMER_REAL, 0)
delivered = client.flush(30)
stats = client.stats()
calls = stats["accepted"] + sum(stats["dropped"].values())
print(handled, delivered, calls == 20000 + handled, stats["sent"] == stats["accepted"], flush=True)
"""


def test_a_signal_handler_that_tracks_and_flushes_never_hangs_the_thread_it_interrupts(
    receiver: Receiver,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SIGNALS), receiver.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HUNG,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    handled, *counted = done.stdout.split()
    assert int(handled) > 0 and counted == ["True", "True", "True"]


# -- a log handler that tracks, while the spool finds the disk full -----------------------


def private_tmpfs_available() -> bool:
    """Whether a tmpfs can be mounted in a mount namespace of our own (root, or
    unprivileged user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


FULL_DISK_LOGGED = """
import logging, os, sys, threading
from segment_core import Client

mount, host = sys.argv[1:]
with open(os.path.join(mount, "ballast"), "wb", buffering=0) as file:  # the disk is full
    try:
        while True:
            file.write(bytes(4096))
    except OSError:
        pass
client = Client("k", host=host, spool_dir=os.path.join(mount, "spool"))


class TrackWarnings(logging.Handler):  # an app's: warnings become events
    def emit(self, record):
        client.track("ops", "Warning Logged", {"message": record.getMessage()[:200]})


logging.getLogger().addHandler(TrackWarnings(level=logging.WARNING))
print(client.track("u", "Order Completed")[0], flush=True)
other = threading.Thread(target=client.track, args=("u", "From Another Thread"))
other.start()
other.join()
print(client.flush(30), client.stats()["sent"], client.stats()["spool"]["disk_full"], flush=True)
"""


@pytest.mark.skipif(
    not private_tmpfs_available(), reason="cannot mount a tmpfs (needs user namespaces or root)"
)
def test_a_log_handler_that_tracks_the_spools_disk_full_warning_gets_its_event_sent(
    receiver: Receiver, tmp_path: Path
) -> None:
    mount = tmp_path / "disk"
    mount.mkdir()
    shell = 'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" -c "$3" "$1" "$4"'
    script = textwrap.dedent(FULL_DISK_LOGGED)
    arguments = [str(mount), sys.executable, script, receiver.url]
    done = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", shell, "sh", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HUNG,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True", "3", "True"]
    events = sorted(m["event"] for m in receiver.messages())
    assert events == ["From Another Thread", "Order Completed", "Warning Logged"]
    warned = [m for m in receiver.messages() if m["event"] == "Warning Logged"]
    assert "no room on the disk" in warned[0]["properties"]["message"]


# -- flush() and shutdown() in a hook, on the sender thread -------------------------------


def test_flush_in_on_success_returns_at_once_on_the_sender_thread(
    make_client: Any, receiver: Receiver
) -> None:
    answers: list[tuple[bool, float]] = []

    def flush_again(message: dict[str, Any]) -> None:
        started = time.monotonic()
        answers.append((client.flush(HOOK_WAIT), time.monotonic() - started))

    client = make_client(on_success=flush_again, flush_at=2500, flush_interval=3600.0)
    for _ in range(3):
        client.track("u", "Order Completed")
    assert client.flush(HUNG)
    # Each hook's flush found its own message settled and waited for nothing (the
    # sender is this very thread); nothing was left to wait for.
    assert [done for done, _ in answers] == [True] * 3
    assert max(took for _, took in answers) < HOOK_WAIT
    assert client.stats()["sent"] == 3


def test_shutdown_in_a_hook_starts_it_and_a_later_one_finishes_it(
    make_client: Any, receiver: Receiver
) -> None:
    answers: list[bool] = []
    hook_done = threading.Event()

    def shut_down(message: dict[str, Any]) -> None:
        answers.append(client.shutdown(HOOK_WAIT))
        hook_done.set()

    client = make_client(on_success=shut_down, flush_at=1)
    client.track("u", "Order Completed")
    assert hook_done.wait(HUNG)
    assert client.track("u", "After The Shutdown Began")[0] is False
    assert client.shutdown(HUNG)
    assert answers == [True]
    stats = client.stats()
    assert (stats["sent"], stats["dropped"]) == (1, {"shut_down": 1})


# -- the counters while a batch's hooks run ----------------------------------------------


@pytest.mark.parametrize("status", [200, 400])
def test_a_batch_whose_hooks_run_counts_once_in_the_stats(
    make_client: Any, receiver: Receiver, status: int
) -> None:
    seen: list[dict[str, Any]] = []

    def look(*_: object) -> None:
        seen.append(client.stats())

    receiver.fail_next(*[Fault(status=status)] if status != 200 else [])
    client = make_client(on_success=look, on_error=look, flush_at=4)
    for _ in range(4):
        client.track("u", "Order Completed")
    assert client.flush(HUNG)
    assert seen
    for stats in seen:
        assert stats["accepted"] == 4
        assert stats["sent"] + stats["failed"] == 4
        assert stats["pending"] == 0


# -- what shutdown() returns ---------------------------------------------------------------


def test_shutdown_returns_true_once_everything_is_delivered_or_failed_for_good(
    make_client: Any, receiver: Receiver
) -> None:
    receiver.fail_next(Fault(status=400))
    failures: list[dict[str, Any]] = []
    client = make_client(on_failure=lambda message, error: failures.append(message))
    client.track("u", "Refused By The Host")
    assert client.flush(HUNG) is True
    assert client.shutdown(HUNG) is True
    assert client.stats()["failed"] == len(failures) == 1


# -- what a hook tracks while flush() waits ------------------------------------------------


@pytest.mark.parametrize("status", [200, 400])
def test_flush_waits_for_what_a_delivery_hook_tracked_while_it_waited(
    make_client: Any, receiver: Receiver, status: int
) -> None:
    # analytics-python's flush() waits for them too: a script that ends right after
    # it (a serverless function) keeps nothing back.
    def delivered(message: dict[str, Any]) -> None:
        if message["event"] == "Order Completed":
            client.track("u", "Delivery Reported")

    def failed(error: Exception, batch: list[dict[str, Any]]) -> None:
        client.track("u", "Delivery Reported")

    receiver.fail_next(*[Fault(status=status)] if status != 200 else [])
    client = make_client(
        on_success=delivered, on_error=failed, max_retries=0, flush_interval=3600.0
    )
    client.track("u", "Order Completed")
    assert client.flush() is True
    assert client.stats()["queued"] == 0
    delivered = [m["event"] for m in receiver.messages()]
    assert delivered == (["Order Completed"] if status == 200 else []) + ["Delivery Reported"]
