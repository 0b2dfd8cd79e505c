"""A signal handler, or a finalizer the garbage collector runs, calling the client while
the thread it interrupted is inside it: ``flush()`` of a spooled client, ``stats()``,
a send in sync mode. Each runs in a process of its own, which must end."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segment_core.collector import CollectorHandle
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
#: Far more than any of these scripts takes: past it, the process dumps its threads'
#: stacks and ends (exit code 1), taken as hung.
HUNG = 60
#: The calls a handler (or a finalizer) makes: enough to land inside stats() often,
#: few enough to end well before the script counts as hung.
CALLS = 300

PREAMBLE = f"""
import faulthandler
faulthandler.dump_traceback_later({HUNG}, exit=True)
"""


def run_script(script: str, *arguments: str) -> list[str]:
    """What ``script`` printed, split into words; the test fails if it hung or failed."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PREAMBLE + textwrap.dedent(script), *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=HUNG + 30,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the process still ran after {HUNG + 30}s: {hung.stderr!r}")
    assert done.returncode == 0, f"hung or failed: {done.stderr[-4000:]}"
    return done.stdout.split()


# -- flush() of a spooled client, in a signal handler, while the thread flushes ----------

FLUSH_IN_FLUSH = """
import signal, sys
from segment_core import Client

host, spool = sys.argv[1:]
client = Client("k", host=host, spool_dir=spool)
handled = 0
busy = False


def flush_again(signum, frame):  # never nested in itself
    global busy, handled
    if busy:
        return
    busy = True
    handled += 1
    client.flush(0.001)
    busy = False


signal.signal(signal.SIGALRM, flush_again)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.0007)
for _ in range(20000):
    client.flush(0.001)
signal.setitimer(signal.ITIMER_REAL, 0)
print(handled > 0, client.track("u", "Order Completed")[0], client.flush(30), flush=True)
"""


def test_a_signal_handlers_flush_of_a_spooled_client_inside_flush_never_hangs(
    receiver: Receiver, tmp_path: Path
) -> None:
    # The interrupted flush() may be inside the wait for the spool's first look at its
    # directory, holding the lock of the event it waits on.
    printed = run_script(FLUSH_IN_FLUSH, receiver.url, str(tmp_path / "spool"))
    assert printed == ["True", "True", "True"]
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]


FLUSH_IN_A_WAITING_FLUSH = """
import os, signal, sys, threading
from segment_core import Client

host, spool = sys.argv[1:]
handled = threading.Event()
answers = []


def flush_again(signum, frame):  # an app's own handler, in the main thread's flush()
    answers.append(client.flush(3600))
    answers.append(client.stats()["pending"])
    handled.set()


def interrupt_the_flush(message):
    # On the sender thread, while the main thread's flush() waits for this very hook.
    os.kill(os.getpid(), signal.SIGUSR1)
    handled.wait(3600)


signal.signal(signal.SIGUSR1, flush_again)
client = Client(
    "k",
    host=host,
    spool_dir=spool,
    on_success=interrupt_the_flush,
    flush_at=2500,
    flush_interval=3600,
)
client.track("u", "Order Completed")
delivered = client.flush(3600)
print(*answers, delivered, client.stats()["pending"], flush=True)
"""


def test_a_signal_handlers_flush_inside_a_spooled_flush_answers_without_waiting(
    receiver: Receiver, tmp_path: Path
) -> None:
    # The handler's flush() waits for nothing: what it would wait for is the flush()
    # it interrupted, on its own thread. The batch's hook still runs then, so not
    # everything accepted is settled: it says so (False), and the main flush() goes on.
    printed = run_script(FLUSH_IN_A_WAITING_FLUSH, receiver.url, str(tmp_path / "spool"))
    assert printed == ["False", "0", "True", "0"]
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]


FLUSH_AS_THE_SPOOL_WRITES = """
import sys
from segment_core import Client

host, spool = sys.argv[1:]
client = Client("k", host=host, spool_dir=spool, flush_at=2500, flush_interval=3600)
client.track("u", "Order Completed")  # waits in the buffer: its delivery settles it on disk
answers = []


def interrupt(frame, event, arg):
    # Flushes where a signal handler may: as the spool writes the next message, its
    # lock held (a profile function runs on the thread it watches, at each call).
    writing = frame.f_code.co_name == "put" and getattr(arg, "__name__", "") == "pwritev"
    if not answers and event == "c_call" and writing:
        answers.append(None)
        answers[0] = client.flush(3600)


sys.setprofile(interrupt)
accepted = client.track("u", "Order Shipped")[0]
sys.setprofile(None)
print(*answers, accepted, client.flush(3600), client.stats()["pending"], flush=True)
"""


def test_a_flush_made_as_the_spool_writes_a_message_answers_without_waiting(
    receiver: Receiver, tmp_path: Path
) -> None:
    # What it would wait for (the first message's delivery, settled on disk under
    # the lock the write holds) waits for its own thread: it asks and answers False.
    printed = run_script(FLUSH_AS_THE_SPOOL_WRITES, receiver.url, str(tmp_path / "spool"))
    assert printed == ["False", "True", "True", "0"]
    events = sorted(m["event"] for m in receiver.messages())
    assert events == ["Order Completed", "Order Shipped"]


# -- stats() interrupted by a call that counts -----------------------------------------

OPTIONS = """
host, mode = sys.argv[1:]
if mode == "sync":
    client = Client("k", host=host, sync_mode=True)
else:  # every call is dropped: the buffer is full
    client = Client("k", host=host, max_queue_size=1, flush_at=2500, flush_interval=3600)
    client.track("u", "Fills The Buffer")
"""

REPORT_COUNTS = """
stats = client.stats()
if mode == "sync":
    counted = stats["accepted"] == stats["sent"] == calls
else:  # (a message the sender took leaves room for one)
    dropped = stats["dropped"]
    made = stats["accepted"] + dropped["queue_full"]
    counted = set(dropped) == {"queue_full"} and made == calls + 1
print(calls > 0, counted, flush=True)
"""

#: A SIGALRM handler that tracks, counting its ``calls``, for a script with a ``client``.
TRACK_ON_SIGALRM = """
calls = 0
busy = False


def track(signum, frame):  # never nested in itself
    global busy, calls
    if busy:
        return
    busy = True
    calls += 1
    client.track("ops", "Signal Handled")
    busy = False


signal.signal(signal.SIGALRM, track)
"""

STATS_IN_A_SIGNAL = (
    """
import signal, sys
from segment_core import Client
"""
    + OPTIONS
    + TRACK_ON_SIGALRM
    + f"""
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
while calls < {CALLS}:
    client.stats()
signal.setitimer(signal.ITIMER_REAL, 0)
"""
    + REPORT_COUNTS
)


@pytest.mark.parametrize("mode", ["sync", "full buffer"])
def test_stats_interrupted_by_a_signal_handler_that_tracks_never_hangs(
    segment_collector: CollectorHandle, mode: str
) -> None:
    # In sync mode the handler's call counts as accepted, then sent; with a full
    # buffer, as dropped: each count, made inside stats(), is in the next one.
    assert run_script(STATS_IN_A_SIGNAL, segment_collector.url, mode) == ["True", "True"]


STATS_IN_A_FINALIZER = (
    """
import gc, sys
from segment_core import Client
"""
    + OPTIONS
    + f"""
calls = 0


class Session:  # in a reference cycle: freed by the garbage collector, at any allocation
    def __init__(self):
        self.me = self

    def __del__(self):
        global calls
        calls += 1
        client.track("u", "Session Ended")


gc.set_threshold(5)  # (a collection every few allocations: in stats() too)
while calls < {CALLS}:
    Session()
    client.stats()
gc.set_threshold(700)
gc.collect()
"""
    + REPORT_COUNTS
)


@pytest.mark.parametrize("mode", ["sync", "full buffer"])
def test_stats_interrupted_by_a_finalizer_that_tracks_never_hangs(
    segment_collector: CollectorHandle, mode: str
) -> None:
    assert run_script(STATS_IN_A_FINALIZER, segment_collector.url, mode) == ["True", "True"]


# -- sync mode: a send interrupted by a handler that sends ------------------------------

SEND_IN_A_LOCKED_SEND = """
import sys
from segment_core import Client

host, where = sys.argv[1:]
client = Client("k", host=host, sync_mode=True)
answers = []


def in_the_lock(frame, event, arg):
    name = frame.f_code.co_name
    if where == "pool":  # urllib3's pool, taking a connection: its queue's lock held
        return event == "call" and name == "_qsize" and frame.f_back.f_code.co_name == "get"
    # The client's batches under way, as it registers one: their lock held.
    in_delivery = frame.f_code.co_filename.endswith("delivery.py")
    return event == "c_call" and name == "hold" and in_delivery and arg.__name__ == "add"


def interrupt(frame, event, arg):
    # Makes a call where a signal handler may run, inside a lock the send holds (a
    # profile function runs on the thread it watches, at each call).
    if not answers and in_the_lock(frame, event, arg):
        answers.append(None)
        answers[0] = client.track("ops", "Signal Handled")[0]


sys.setprofile(interrupt)
delivered = client.track("u", "Order Completed")[0]
sys.setprofile(None)
stats = client.stats()
print(*answers, delivered, stats["accepted"], stats["sent"], flush=True)
"""


@pytest.mark.parametrize("where", ["pool", "batches under way"])
def test_sync_mode_call_made_inside_a_locked_send_is_sent_on_a_thread_of_its_own(
    receiver: Receiver, where: str
) -> None:
    # With connections and a lock of its own, the nested call's send waits for
    # nothing the interrupted one holds: both are delivered at once.
    printed = run_script(SEND_IN_A_LOCKED_SEND, receiver.url, where)
    assert printed == ["True", "True", "2", "2"]
    events = sorted(m["event"] for m in receiver.messages())
    assert events == ["Order Completed", "Signal Handled"]


SEND_IN_A_SEND = (
    """
import signal, sys, threading
from segment_core import Client

host, count = sys.argv[1], int(sys.argv[2])
client = Client("k", host=host, sync_mode=True)
"""
    + TRACK_ON_SIGALRM
    + """signal.setitimer(signal.ITIMER_REAL, 0.003, 0.003)
delivered = sum(client.track("u", "Page Viewed")[0] for _ in range(count))
signal.setitimer(signal.ITIMER_REAL, 0)
# A handler's message not delivered by its call's deadline is still on its way.
for thread in threading.enumerate():
    if thread is not threading.current_thread():
        thread.join()
stats = client.stats()
print(calls, delivered, stats["accepted"], stats["sent"], flush=True)
"""
)


def test_sync_mode_send_interrupted_by_a_signal_handler_that_tracks_never_hangs(
    segment_collector: CollectorHandle,
) -> None:
    # The collector answers at once: the handler lands in the client's code, not in
    # a wait for the answer, as it would with a slower receiver.
    count = 1000
    printed = run_script(SEND_IN_A_SEND, segment_collector.url, str(count))
    calls, delivered, accepted, sent = map(int, printed)
    assert calls > 0 and delivered == count
    assert accepted == sent == count + calls
    events = [e["message"]["event"] for e in segment_collector.wait_for(count + calls)]
    assert (events.count("Page Viewed"), events.count("Signal Handled")) == (count, calls)
