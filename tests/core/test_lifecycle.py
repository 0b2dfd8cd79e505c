"""Exit, SIGTERM and fork, each in a real subprocess sending to a real server."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from segment_core import Client, lifecycle
from tests.core.spool.helpers import spooled_messages
from tests.receiver import Fault, Receiver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def signalled_once_ready(
    process: subprocess.Popen[str],
    sig: signal.Signals = signal.SIGTERM,
    times: int = 1,
    timeout: float = 60,
) -> str:
    """Send ``sig`` ``times`` once ``process`` printed "ready"; its stderr once it ended."""
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    for _ in range(times):
        process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()
    return stderr


def test_returning_from_main_delivers_every_accepted_event(receiver: Receiver) -> None:
    process = run_script(
        """
        import sys
        from segment_core import Client
        client = Client("k", host=sys.argv[1])
        for i in range(5000):
            client.track("user", "Loop", {"i": i})
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    indexes = [m["properties"]["i"] for m in receiver.messages()]
    assert sorted(indexes) == list(range(5000))


def test_module_level_api_delivers_at_exit(receiver: Receiver) -> None:
    process = run_script(
        """
        import sys
        import segment_core as analytics
        analytics.write_key = "k"
        analytics.host = sys.argv[1]
        for i in range(300):
            analytics.track("user", "Module", {"i": i})
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert len(receiver.messages()) == 300


@pytest.mark.parametrize(
    ("sig", "signals"),
    # A repeated SIGTERM lets the first finish; Python's own Ctrl-C raises
    # KeyboardInterrupt, and atexit delivers.
    [(signal.SIGTERM, 1), (signal.SIGTERM, 3), (signal.SIGINT, 1)],
    ids=["sigterm", "sigterm-3", "ctrl-c"],
)
def test_sigterm_on_a_plain_script_delivers_what_it_accepted(
    receiver: Receiver, sig: signal.Signals, signals: int
) -> None:
    process = run_script(
        """
        import sys, threading
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600, flush_at=2500)
        for i in range(2000):
            client.track("user", "Before SIGTERM", {"i": i})
        print("ready", flush=True)
        threading.Event().wait(120)
        """,
        receiver.url,
    )
    stderr = signalled_once_ready(process, sig, signals)
    assert process.returncode == -sig, stderr
    assert len(receiver.messages()) == 2000


def test_sigterm_waits_for_the_background_work_still_running(receiver: Receiver) -> None:
    # A thread of start_thread and a job of with_binding, still at work as SIGTERM
    # comes (runserver --noreload, flask run --no-reload, a script): their events too.
    process = run_script(
        """
        import sys, threading
        from concurrent.futures import ThreadPoolExecutor
        import segment_core
        from segment_core.scope import start_thread, with_binding

        segment_core.write_key = "k"
        segment_core.host = sys.argv[1]
        going = threading.Event()

        def work(kind):
            going.wait(60)  # until SIGTERM came
            segment_core.track("worker", "Background", {"kind": kind})

        def on_sigterm_seen():
            # The handler runs on the main thread; the work goes on once it did.
            threading.Timer(0.2, going.set).start()

        start_thread(work, "thread")
        ThreadPoolExecutor(1).submit(with_binding(work), "executor")
        segment_core.track("main", "Foreground")
        import signal
        chained = signal.getsignal(signal.SIGTERM)
        def first(signum, frame):
            on_sigterm_seen()
            chained(signum, frame)
        signal.signal(signal.SIGTERM, first)
        print("ready", flush=True)
        threading.Event().wait(120)
        """,
        receiver.url,
    )
    stderr = signalled_once_ready(process)
    assert process.returncode == -signal.SIGTERM, stderr
    events = sorted(
        m["event"] + m.get("properties", {}).get("kind", "") for m in receiver.messages()
    )
    assert events == ["Backgroundexecutor", "Backgroundthread", "Foreground"]


def test_sigterm_sends_what_background_work_tracks_while_it_outlives_the_wait(
    receiver: Receiver,
) -> None:
    # Work that goes on past shutdown_timeout (a long upload): what it tracked in
    # time is delivered, though the client would send it only an hour later.
    process = run_script(
        """
        import sys, threading
        from segment_core import Client
        from segment_core.scope import start_thread

        client = Client("k", host=sys.argv[1], flush_interval=3600, shutdown_timeout=5)
        going = threading.Event()

        def work():
            going.wait(60)  # until SIGTERM came
            for step in range(5):
                client.track("worker", "Step", {"step": step})
            threading.Event().wait(120)  # then on and on

        start_thread(work)
        import signal
        chained = signal.getsignal(signal.SIGTERM)
        def first(signum, frame):
            threading.Timer(0.1, going.set).start()
            chained(signum, frame)
        signal.signal(signal.SIGTERM, first)
        print("ready", flush=True)
        threading.Event().wait(120)
        """,
        receiver.url,
    )
    stderr = signalled_once_ready(process)
    assert process.returncode == -signal.SIGTERM, stderr
    assert sorted(m["properties"]["step"] for m in receiver.messages()) == list(range(5))
    assert "still running after 5s of shutdown_timeout as the process exits" in stderr


def test_sigterm_during_the_app_s_own_long_shutdown_reports_what_it_gives_up() -> None:
    # The app's shutdown(30) during an outage, and a SIGTERM (docker stop): the
    # process ends within shutdown_timeout, saying what was lost, as any shutdown does.
    process = run_script(
        """
        import sys, threading
        from segment_core import Client

        def on_error(error, messages):
            print(f"on_error: {len(messages)}", file=sys.stderr, flush=True)

        client = Client(
            "k", host="http://127.0.0.1:9", shutdown_timeout=2, on_error=on_error
        )  # nothing listens there
        for i in range(20):
            client.track("user", "Before SIGTERM", {"i": i})
        # Ready once the main thread waits in its shutdown.
        threading.Timer(0.5, lambda: print("ready", flush=True)).start()
        client.shutdown(30)
        threading.Event().wait(60)
        """,
    )
    stderr = signalled_once_ready(process)
    assert process.returncode == -signal.SIGTERM, stderr
    assert "on_error: 20" in stderr
    assert "Segment client shut down with 20 message(s) undelivered" in stderr


def test_sigterm_inside_a_bound_call_of_the_main_thread_waits_not_for_it(
    receiver: Receiver,
) -> None:
    # A job run on the main thread through with_binding: its own call never returns
    # while the handler waits on that thread, so it is not waited for.
    process = run_script(
        """
        import sys, threading
        from segment_core import Client
        from segment_core.scope import with_binding

        client = Client("k", host=sys.argv[1], shutdown_timeout=600)

        def job():
            client.track("u", "In The Job")
            print("ready", flush=True)
            threading.Event().wait(600)

        with_binding(job)()
        """,
        receiver.url,
    )
    stderr = signalled_once_ready(process, timeout=120)  # far less than shutdown_timeout
    assert process.returncode == -signal.SIGTERM, stderr
    assert [m["event"] for m in receiver.messages()] == ["In The Job"]


def test_sigint_left_at_its_default_action_is_not_taken_over() -> None:
    """A program's choice to end at once on Ctrl-C, even inside a long C call."""
    process = run_script(
        """
        import signal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from segment_core import Client
        Client("k", host="http://127.0.0.1:9").track("user", "Accepted")
        print(signal.getsignal(signal.SIGINT) is signal.SIG_DFL, flush=True)
        """
    )
    out, stderr = process.communicate(timeout=60)
    assert out.strip() == "True", stderr


def test_sigterm_during_a_sync_mode_call_lets_the_call_finish(receiver: Receiver) -> None:
    """The call waits 2 s before its retry when SIGTERM comes (docker stop): it
    retries and delivers, returns, and the process then ends by SIGTERM."""
    receiver.fail_next(Fault(503))
    process = run_script(
        """
        import sys
        from segment_core import Client
        client = Client(
            "k", host=sys.argv[1], sync_mode=True, timeout=30, backoff=lambda attempt: 2.0
        )
        print("ready", flush=True)
        delivered, _ = client.track("user", "During SIGTERM")
        print("returned", delivered, flush=True)
        client.track("user", "After SIGTERM")  # refused: the process is ending
        """,
        receiver.url,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 30
    while not receiver.requests and time.monotonic() < deadline:  # the first attempt
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    try:
        out, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM, stderr
    assert out.strip() == "returned True", (out, stderr)
    assert [m["event"] for m in receiver.messages()] == ["During SIGTERM"]


def test_sigterm_while_a_call_holds_the_buffer_lock_still_delivers_and_ends(
    receiver: Receiver,
) -> None:
    # The signal is handled in the main thread at the next bytecode: here, while
    # track() holds the buffer's lock (it wakes the sender under it). Shutting
    # down from the handler would wait for that lock forever.
    process = run_script(
        """
        import os, signal, sys, threading
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600, flush_at=2)
        client.track("user", "Before SIGTERM")
        condition = client._worker._has_work  # notified as the second message makes a batch
        notify = condition.notify
        def notify_after_sigterm(n=1):
            os.kill(os.getpid(), signal.SIGTERM)
            notify(n)
        condition.notify = notify_after_sigterm
        for event in ("During SIGTERM", "After SIGTERM"):
            accepted, _ = client.track("user", event)
            print(f"{event}: {accepted}", flush=True)
        threading.Event().wait(120)
        """,
        receiver.url,
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM, stderr
    # The process may end before it prints; whatever it accepted was delivered.
    accepted = [line.split(":")[0] for line in stdout.splitlines() if line.endswith("True")]
    delivered = [m["event"] for m in receiver.messages()]
    assert delivered[:2] == ["Before SIGTERM", "During SIGTERM"]
    assert set(accepted) <= set(delivered)


def test_an_existing_sigterm_handler_is_left_alone(receiver: Receiver) -> None:
    process = run_script(
        """
        import signal, sys, threading
        def mine(signum, frame):
            print("mine", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, mine)
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600)
        client.track("user", "E")
        assert signal.getsignal(signal.SIGTERM) is mine
        print("ready", flush=True)
        threading.Event().wait(120)
        """,
        receiver.url,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 3, stderr
    assert "mine" in stdout
    assert len(receiver.messages()) == 1  # delivered by atexit after the app's own exit


def test_a_sigterm_handler_set_outside_python_is_left_alone(receiver: Receiver) -> None:
    # gevent's signal_handler() sets it in its event loop: Python's own record still
    # says SIG_DFL. A client built afterwards (lazily, by a first request) must not
    # replace it: the app's graceful stop runs, and atexit delivers.
    process = run_script(
        """
        from gevent import monkey
        monkey.patch_all()
        import gevent, signal, sys
        stopped = gevent.event.Event()
        def graceful():
            print("mine", flush=True)
            client.track("user", "Server Stopped")
            stopped.set()
        gevent.signal_handler(signal.SIGTERM, graceful)
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600)
        client.track("user", "Page Served")
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        print("ready", flush=True)
        stopped.wait(120)
        """,
        receiver.url,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "mine" in stdout
    assert [m["event"] for m in receiver.messages()] == ["Page Served", "Server Stopped"]


@pytest.mark.parametrize("how", ["client", "module-level API"])
def test_a_first_call_from_a_finalizer_as_the_interpreter_ends_is_refused_not_hung(
    receiver: Receiver, how: str
) -> None:
    # A module-global object's __del__ runs after atexit, as the interpreter tears its
    # modules down: no thread can start there (Python 3.11 waits for one for ever).
    process = run_script(
        """
        import sys, segment_core
        from segment_core import Client
        if sys.argv[2] == "client":
            client = Client("k", host=sys.argv[1])
        else:
            segment_core.write_key, segment_core.host = "k", sys.argv[1]
            client = segment_core
        class Session:
            def __del__(self):
                accepted = client.track("u", "Session Closed")[0]
                print("accepted" if accepted else "refused", flush=True)
        session = Session()
        """,
        receiver.url,
        how,
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout.split() == ["refused"]
    assert receiver.messages() == []


@pytest.mark.parametrize("how", ["client", "module-level API", "spooled client"])
def test_a_first_call_from_an_atexit_handler_registered_before_the_import_is_not_lost(
    receiver: Receiver, tmp_path: Path, how: str
) -> None:
    # The handler runs after the exit's delivery (the last registered runs first):
    # nothing would deliver what it tracks, so it is refused and counted, not
    # accepted and lost; a spooled client keeps it on disk for the next process.
    process = run_script(
        """
        import atexit, sys
        def last_words():
            import segment_core
            from segment_core import Client
            if sys.argv[2] == "module-level API":
                segment_core.write_key, segment_core.host = "k", sys.argv[1]
                accepted = segment_core.track("u", "Exited")[0]
                stats = segment_core.default_client.stats()
            else:
                spool = {"spool_dir": sys.argv[3]} if sys.argv[2] == "spooled client" else {}
                client = Client("k", host=sys.argv[1], **spool)
                accepted = client.track("u", "Exited")[0]
                stats = client.stats()
            print("accepted" if accepted else "refused", stats["dropped"], flush=True)
        atexit.register(last_words)
        import segment_core
        """,
        receiver.url,
        how,
        str(tmp_path / "spool"),
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    if how != "spooled client":
        assert stdout.strip() == "refused {'shut_down': 1}", stderr
        assert receiver.messages() == []
        return
    assert stdout.strip() == "accepted {}", stderr
    assert receiver.messages() == []
    next_process = Client("k", host=receiver.url, spool_dir=tmp_path / "spool")
    try:
        assert next_process.flush(10)
    finally:
        next_process.shutdown(5)
    assert [m["event"] for m in receiver.messages()] == ["Exited"]


MULTIPROCESSING_SCRIPT = """
import multiprocessing, os, sys
import segment_core
from segment_core import Client

segment_core.default_client = Client(
    "k", host=os.environ["RECEIVER"], flush_interval=3600, flush_at=2500
)


def track(label):
    assert segment_core.track("user", "In child", {"label": label})[0]


if __name__ == "__main__":
    track("parent")
    for method in ("fork", "forkserver", "spawn"):
        child = multiprocessing.get_context(method).Process(target=track, args=(method,))
        child.start()
        child.join()
        assert child.exitcode == 0
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(track, [f"pool-{i}" for i in range(4)])
"""


def test_multiprocessing_children_deliver_what_they_accepted(
    receiver: Receiver, tmp_path: Path
) -> None:
    # Children of fork and forkserver (and a Pool's workers) leave through os._exit().
    script = tmp_path / "children.py"
    script.write_text(MULTIPROCESSING_SCRIPT)
    process = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "RECEIVER": receiver.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    labels = sorted(m["properties"]["label"] for m in receiver.messages())
    expected = ["fork", "forkserver", "parent", *(f"pool-{i}" for i in range(4)), "spawn"]
    assert labels == expected


def test_a_sigterm_inside_a_call_ends_a_main_thread_that_then_waits_for_ever(
    receiver: Receiver,
) -> None:
    # The signal stops the main thread inside the client (here in before_send): a
    # thread delivers, then signals again. That signal must reach the main thread,
    # which waits without a timeout, or the process never ends.
    process = run_script(
        """
        import os, signal, sys, threading
        import segment_core

        def stop_here(message):
            if message["event"] == "Stop":
                os.kill(os.getpid(), signal.SIGTERM)
            return message

        segment_core.default_client = segment_core.Client(
            "k", host=sys.argv[1], flush_interval=3600, before_send=stop_here
        )
        segment_core.track("user", "Before The Wait")
        segment_core.track("user", "Stop")  # dropped: the shutdown began inside it
        threading.Event().wait()
        """,
        receiver.url,
    )
    try:
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM
    assert [m["event"] for m in receiver.messages()] == ["Before The Wait"]


def test_a_child_terminated_before_it_runs_still_ends(receiver: Receiver) -> None:
    # The parent's SIGTERM handler is inherited; a SIGTERM that reaches a child before
    # it first runs (multiprocessing.Pool.terminate() right after a worker started)
    # must still end it, or the parent's join() waits for ever.
    process = run_script(
        """
        import os, signal, sys, time
        import segment_core
        segment_core.default_client = segment_core.Client(
            "k", host=sys.argv[1], flush_interval=3600
        )
        segment_core.track("parent", "Before forks")  # chains the SIGTERM handler
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        survivors = 0
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:  # never ends: the signal was lost
                    survivors += 1
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.01)
            if survivors:
                break
        print(survivors)
        """,
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "0", stderr
    assert [m["event"] for m in receiver.messages()] == ["Before forks"]


def test_fork_child_and_parent_each_deliver_their_own(receiver: Receiver) -> None:
    process = run_script(
        """
        import os, sys
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600, flush_at=2500)
        for i in range(100):
            client.track("parent", "Before fork", {"i": i})
        pid = os.fork()
        if pid == 0:
            for i in range(50):
                client.track("child", "In child", {"i": i})
            sys.exit(0)
        for i in range(50):
            client.track("parent", "After fork", {"i": i})
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    messages = receiver.messages()
    counts = Counter(m["event"] for m in messages)
    assert counts == {"Before fork": 100, "After fork": 50, "In child": 50}
    assert len({m["messageId"] for m in messages}) == 200


def test_a_forked_sync_client_waits_for_no_call_of_its_parents_threads() -> None:
    """A parent's thread was inside a sync_mode call at the fork: the child's
    ``flush()`` has no call of its own under way and answers True at once."""
    process = run_script(
        """
        import os, socket, sys, threading
        from segment_core import Client
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(60)
        port = server.getsockname()[1]
        client = Client("k", host=f"http://127.0.0.1:{port}", sync_mode=True,
                        timeout=120, shutdown_timeout=120)
        threading.Thread(target=lambda: client.track("u", "Held"), daemon=True).start()
        connection, _ = server.accept()  # the call is under way, never answered
        pid = os.fork()
        if pid == 0:
            os._exit(0 if client.flush(60) is True else 1)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status))
        """
    )
    _, stderr = process.communicate(timeout=100)
    assert process.returncode == 0, stderr


def test_a_forked_child_of_a_running_client_still_delivers(receiver: Receiver) -> None:
    process = run_script(
        """
        import os, sys
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_at=1)
        client.track("parent", "Started")
        assert client.flush(10)
        pid = os.fork()
        if pid == 0:
            client.track("child", "From child")
            ok = client.flush(10)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert sorted(m["event"] for m in receiver.messages()) == ["From child", "Started"]


def test_a_child_that_monkey_patches_after_the_fork_gets_green_parts(
    receiver: Receiver, tmp_path: Path
) -> None:
    # gunicorn's gevent worker forks, then patches: what the child's calls wait on must
    # be made after that, or one greenlet waiting stops every other one for good.
    pytest.importorskip("gevent")
    process = run_script(
        """
        import os, signal, sys
        import segment_core
        from segment_core import Client

        segment_core.write_key, segment_core.host = "module-key", sys.argv[1]
        client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2])
        client.track("parent", "Parent")  # the parent's locks and threads
        assert client.flush(10)
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)  # a hang ends the child by SIGALRM
            from gevent import monkey

            monkey.patch_all()
            import gevent

            def calls(i):
                client.track(f"u{i}", "Child")
                segment_core.track(f"u{i}", "Child, module level")

            finished = gevent.joinall([gevent.spawn(calls, i) for i in range(5)], timeout=10)
            ok = len(finished) == 5 and client.flush(10) and segment_core.flush(10)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        receiver.url,
        str(tmp_path / "spool"),
        env={**os.environ, "SEGMENT_SPOOL_DIR": str(tmp_path / "module-spool")},
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    counts = Counter(m["event"] for m in receiver.messages())
    assert counts == {"Parent": 1, "Child": 5, "Child, module level": 5}


@pytest.mark.parametrize(
    "held",
    ["segment_core.lifecycle._lock", "segment_core._default_lock"],
)
def test_a_fork_while_another_thread_holds_a_lock_leaves_the_child_free(
    receiver: Receiver, held: str
) -> None:
    # The child's first message registers its client (and the module-level call
    # builds the default one): neither may wait for a thread the child does not have.
    process = run_script(
        f"""
        import os, signal, sys, threading
        import segment_core
        import segment_core.lifecycle
        from segment_core import Client

        holding, release = threading.Event(), threading.Event()

        def hold():
            with {held}:
                holding.set()
                release.wait(30)

        threading.Thread(target=hold, daemon=True).start()
        holding.wait(10)
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a hang ends the child by SIGALRM
            segment_core.write_key, segment_core.host = "k", sys.argv[1]
            client = Client("k", host=sys.argv[1])
            client.track("u1", "Child")
            segment_core.track("u1", "Child, module level")
            ok = client.flush(10) and segment_core.flush(10)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        release.set()
        print(os.waitstatus_to_exitcode(status))
        """,
        receiver.url,
    )
    out, err = process.communicate(timeout=60)
    assert out.strip() == "0", err
    events = sorted(m["event"] for m in receiver.messages())
    assert events == ["Child", "Child, module level"]


def test_clients_deliver_side_by_side_at_exit(receiver: Receiver) -> None:
    # Four clients against a server that hangs: the exit takes one shutdown_timeout,
    # not one per client.
    receiver.fail_next(*[Fault(delay=20)] * 8)
    process = run_script(
        """
        import sys, time
        from segment_core import Client

        clients = [
            Client("k", host=sys.argv[1], shutdown_timeout=1.0, timeout=30) for _ in range(4)
        ]
        for client in clients:
            client.track("u1", "Held")
        print(time.monotonic(), flush=True)
        """,
        receiver.url,
    )
    out, err = process.communicate(timeout=60)
    ended = time.monotonic()
    assert process.returncode == 0, err
    assert ended - float(out) < 3.0  # one client after another: over 4 s
    assert err.count("shut down with 1 message(s) undelivered") == 4


def test_the_exit_after_an_explicit_shutdown_does_not_wait_again() -> None:
    # A host that never answers: the script's shutdown(0.5) gives the message up at
    # its deadline (on_failure hears of it); the exit has nothing left to wait for.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        process = run_script(
            """
            import sys, time
            from segment_core import Client

            client = Client(
                "k", host=sys.argv[1], timeout=30, shutdown_timeout=5,
                on_failure=lambda message, error: print("failed", message["event"], flush=True),
            )
            client.track("u1", "Held")
            print(client.shutdown(0.5), flush=True)
            print(time.monotonic(), flush=True)
            """,
            f"http://127.0.0.1:{silent.getsockname()[1]}",
        )
        out, err = process.communicate(timeout=60)
        ended = time.monotonic()
    assert process.returncode == 0, err
    failed, returned, returned_at = out.splitlines()
    assert (failed, returned) == ("failed Held", "False")
    assert ended - float(returned_at) < 3.0  # another shutdown_timeout at exit: over 5 s
    assert err.count("shut down with 1 message(s) undelivered") == 1


LIFESPAN_THEN_EXIT = """
import asyncio, sys, time
from segment_core import Client
from segment_core.lifespan import flush_in_thread

client = Client("k", host=sys.argv[1], shutdown_timeout=2.0, timeout=30, **OPTIONS)
client.track("u1", "Held")
print(time.monotonic(), flush=True)
asyncio.run(flush_in_thread(client))  # the app's lifespan shutdown; then the exit
"""


def test_an_exit_after_a_lifespan_flush_that_ran_out_of_time_does_not_wait_again(
    tmp_path: Path,
) -> None:
    # uvicorn without --workers: the lifespan flush, then atexit, for a host that
    # never answers. Both share one shutdown_timeout; the spool keeps the message.
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        script = LIFESPAN_THEN_EXIT.replace("OPTIONS", repr({"spool_dir": str(tmp_path)}))
        process = run_script(script, url)
        out, err = process.communicate(timeout=60)
        ended = time.monotonic()
    assert process.returncode == 0, err
    assert ended - float(out) < 3.2  # one shutdown_timeout and the exit; two are 4 s
    assert (
        f"1 message(s) not delivered to {url} within shutdown_timeout=2s at shutdown "
        "(1 of them on disk in the spool, for the next process); last error: " in err
    )
    assert "1 Segment message(s) stay in the spool" in err
    assert [b'"Held"' in message for message in spooled_messages(tmp_path)] == [True]


def test_an_exit_after_a_lifespan_flush_that_ran_out_of_time_waits_once_the_host_answers(
    receiver: Receiver,
) -> None:
    # The host answers after the lifespan flush gave up: the exit waits for what
    # was tracked since, as any exit does.
    receiver.fail_next(Fault(delay=3.0))
    script = LIFESPAN_THEN_EXIT.replace("OPTIONS", "{}") + textwrap.dedent(
        """
        deadline = time.monotonic() + 20
        while client.stats()["batches"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        client.track("u1", "After")
        """
    )
    process = run_script(script, receiver.url)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert sorted(m["event"] for m in receiver.messages()) == ["After", "Held"]


THREADED_WSGI_APP = """
import os, threading
from concurrent.futures import ThreadPoolExecutor
import segment_core
from segment_core import Client
from segment_core.scope import Analytics, bound, start_thread, with_binding

segment_core.default_client = Client(flush_at=2500, flush_interval=3600)
executor = ThreadPoolExecutor(1)


def later(label):
    threading.Event().wait(2.0)  # still running as the worker exits
    segment_core.analytics().track("Thread Work", {"label": label})


def app(environ, start_response):
    if environ["PATH_INFO"] == "/work":
        with bound(Analytics(anonymous_id="visitor")) as visitor:
            visitor.track("Work Requested")
            start_thread(later, "start_thread")
            executor.submit(with_binding(later), "executor")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""


@pytest.mark.slow
def test_gunicorns_worker_exit_hook_delivers_what_running_threads_send_after_it(
    segment_collector: Any, tmp_path: Path
) -> None:
    from tests.e2e.servers import app_env, free_port, gunicorn_argv, running

    (tmp_path / "threaded_app.py").write_text(THREADED_WSGI_APP)
    port = free_port()
    argv = gunicorn_argv(
        "threaded_app:app",
        port,
        "--workers=1",
        "--pythonpath",
        str(tmp_path),
        # The README's gunicorn.conf.py: `from segment_core.lifecycle import worker_exit`.
        "--config",
        "python:tests.e2e.apps.gunicorn_conf",
    )
    env = app_env(segment_collector.url)
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path) as server:
        assert requests.get(server.url + "/work", timeout=10).status_code == 200
        # The worker's hook runs while both threads still wait to track.
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    events = segment_collector.wait_for(3, timeout=20, type="track")
    assert sorted(str(e["message"].get("properties", {}).get("label")) for e in events) == [
        "None",
        "executor",
        "start_thread",
    ]
    assert "dropped" not in log and "Traceback" not in log


def test_worker_exit_called_for_another_process_leaves_the_clients_alone(
    make_client: Any, receiver: Receiver
) -> None:
    # gunicorn's arbiter calls the hook itself for a worker it finds already gone.
    client = make_client(flush_interval=3600)
    assert client.track("user", "Before the hook")[0]
    lifecycle.worker_exit(server=None, worker=SimpleNamespace(pid=os.getpid() + 1))
    assert client.track("user", "After the hook")[0]
    assert client.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Before the hook", "After the hook"]


def test_a_failure_since_recovered_does_not_leave_the_last_events_to_the_spool(
    receiver: Receiver, tmp_path: Path
) -> None:
    # One 503 long ago, retried and delivered: at a work-horse's end the service
    # answers, so its last events are sent, not left on disk for another process.
    receiver.fail_next(Fault(503))
    process = run_script(
        """
        import sys
        from segment_core import Client, lifecycle
        client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2],
                        retry_backoff_min=0.01, retry_backoff_max=0.05)
        client.track("u", "Early")
        assert client.flush(10)
        assert client.stats()["last_error"] is not None  # the 503, retried
        for i in range(50):
            client.track("u", "Late", {"i": i})
        print(lifecycle.shutdown_all(10, leave_to_spool=True))
        """,
        receiver.url,
        str(tmp_path / "spool"),
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "True"
    assert Counter(m["event"] for m in receiver.messages()) == {"Early": 1, "Late": 50}


def test_a_ctrl_c_during_the_exit_delivery_stops_it_with_one_line() -> None:
    # A host that takes the request and never answers: the exit's delivery waits; a
    # Ctrl-C then (a second one, in a terminal) ends it with one line, no traceback.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        process = run_script(
            """
            import sys
            from segment_core import Client

            client = Client(
                "k", host=sys.argv[1], timeout=60, shutdown_timeout=60, flush_interval=60
            )
            client.track("u1", "Held")
            """,
            f"http://127.0.0.1:{silent.getsockname()[1]}",
        )
        silent.settimeout(30)
        connection, _ = silent.accept()
        with connection:
            connection.settimeout(30)
            assert connection.recv(4096).startswith(b"POST")  # sent by the exit's delivery
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
    assert "Exception ignored" not in err, err
    assert "Traceback" not in err, err
    # Its batch was sent and may have arrived: it is not counted as undelivered.
    assert (
        "delivery at exit interrupted; 0 message(s) not delivered, and 1 in a request still "
        "waiting for its answer (they may have arrived)"
    ) in err, err


def test_a_ctrl_c_while_the_exit_delivery_waits_to_retry_counts_the_batch_undelivered(
    receiver: Receiver,
) -> None:
    # The host answered 503 and asked for a minute's wait: nothing of the batch arrived.
    receiver.fail_next(Fault(status=503, retry_after="60"))
    process = run_script(
        """
        import sys
        from segment_core import Client, signals

        def say_retrying(sender, **details):
            print("retrying", flush=True)

        client = Client("k", host=sys.argv[1], shutdown_timeout=120, flush_interval=60)
        signals.batch_failed.connect(say_retrying)
        client.track("u1", "Held")
        """,
        receiver.url,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "retrying"  # waits for the retry now
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert "Traceback" not in err, err
    assert "delivery at exit interrupted; 1 message(s) not delivered\n" in err, err


@pytest.mark.parametrize("variable", ["RUN_MAIN", "WERKZEUG_RUN_MAIN"])
def test_a_process_a_dev_server_reloads_waits_briefly_at_exit(variable: str) -> None:
    # Django's and Werkzeug's reloaders serve the edited code once this process has
    # ended: with the host down, it must not wait out its shutdown_timeout.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        started = time.monotonic()
        process = run_script(
            """
            import sys
            from segment_core import Client

            client = Client("k", host=sys.argv[1], shutdown_timeout=10, flush_interval=60)
            client.track("u1", "Held")
            """,
            f"http://127.0.0.1:{closed.getsockname()[1]}",
            env={**os.environ, variable: "true"},
        )
        _, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert process.returncode == 0, err
    assert elapsed < 4.0, err  # 1 s for the delivery, the rest for the interpreter
    assert "shut down with 1 message(s) undelivered" in err, err


def test_the_exit_wait_is_shortened_only_under_a_dev_servers_reloader(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(shutdown_timeout=10)
    for variable in ("RUN_MAIN", "WERKZEUG_RUN_MAIN"):
        monkeypatch.delenv(variable, raising=False)
    assert lifecycle.shutdown_wait(client) == (10, "shutdown_timeout=10s")
    monkeypatch.setenv("RUN_MAIN", "false")
    assert lifecycle.shutdown_wait(client)[0] == 10
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    assert lifecycle.shutdown_wait(client)[0] == lifecycle.RELOAD_WAIT


FORKED_OFF_A_THREAD = """
import os, signal, sys, threading
from segment_core import Client

options = {"spool_dir": sys.argv[2]} if sys.argv[2] else {}
client = Client("k", host=sys.argv[1], flush_interval=3600, **options)
client.track("parent", "Before fork")
children = []


def late():
    threading.main_thread().join()  # the child's main thread: the one that forked it
    client.track("child", "After its forking thread ended")


def fork(depth):
    pid = os.fork()
    if pid == 0:
        client.track("child", f"Forked at depth {depth}")
        if depth == 1:
            threading.Thread(target=late).start()
            fork(2)  # from the child's only thread, which is no real main thread either
        return  # the child's only thread ends here: its process never runs atexit
    children.append(pid)
    _, status = os.waitpid(pid, 0)  # for ever, if the child never ends
    if os.waitstatus_to_exitcode(status) != 0:
        os._exit(3)


thread = threading.Thread(target=fork, args=(1,))
thread.start()
thread.join(60)
if thread.is_alive():
    print("a child forked off a thread never ended", flush=True)
    os.killpg(0, signal.SIGKILL)
"""


def run_in_a_session_of_its_own(script: str, *arguments: str) -> None:
    """Run ``script``; the test fails unless it exits with 0 within two minutes.

    Its process group is killed in the end, so that no child it forked outlives it.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stdout + stderr


@pytest.mark.parametrize("spooled", [False, True], ids=["in memory", "spooled"])
def test_a_child_forked_off_a_thread_delivers_and_ends_when_its_threads_end(
    receiver: Receiver, tmp_path: Path, spooled: bool
) -> None:
    # Without the library such a child ends when its last thread does, and never runs
    # atexit: the library's own threads must neither keep it alive nor lose its events.
    spool = str(tmp_path / "spool") if spooled else ""
    run_in_a_session_of_its_own(FORKED_OFF_A_THREAD, receiver.url, spool)
    counts = Counter(m["event"] for m in receiver.messages())
    assert counts == {
        "Before fork": 1,
        "Forked at depth 1": 1,
        "Forked at depth 2": 1,
        "After its forking thread ended": 1,
    }


FORKED_OFF_A_THREAD_TO_A_SILENT_HOST = """
import _thread, os, socket, sys, threading, time
from segment_core import Client

silent = socket.socket()
silent.bind(("127.0.0.1", 0))
silent.listen()  # takes connections, never answers
client = Client(
    "k", host=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=60, shutdown_timeout=1
)


MARKER = sys.argv[1] if len(sys.argv) > 1 else ""
WORKER = sys.argv[2] if len(sys.argv) > 2 else ""


def work():
    time.sleep(1.5)
    with open(MARKER, "w") as done:
        done.write("done")


def fork():
    pid = os.fork()
    if pid == 0:
        client.track("user", "In the child")
        if WORKER == "raw":  # a thread threading does not know of
            _thread.start_new_thread(work, ())
        elif WORKER:  # a daemon thread of the app's, whatever its name
            threading.Thread(target=work, name=WORKER, daemon=True).start()
        return  # the child's only thread of its own ends: so should the child
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 3)
        time.sleep(0.1)
    print("the child outlived its shutdown_timeout by far", flush=True)
    os._exit(4)


thread = threading.Thread(target=fork)
thread.start()
thread.join()
"""


def test_a_child_forked_off_a_thread_ends_by_shutdown_timeout_when_the_host_is_silent() -> None:
    # Its sender, given up on at the deadline, would wait for an answer for `timeout`.
    run_in_a_session_of_its_own(FORKED_OFF_A_THREAD_TO_A_SILENT_HOST)


@pytest.mark.parametrize("worker", ["raw", "segment-transcoder-0"])
def test_a_child_forked_off_a_thread_ends_only_after_the_apps_own_threads(
    tmp_path: Path, worker: str
) -> None:
    marker = tmp_path / "done"
    run_in_a_session_of_its_own(FORKED_OFF_A_THREAD_TO_A_SILENT_HOST, str(marker), worker)
    assert marker.read_text() == "done"


CHILD_THREAD_TRACKING_AS_IT_EXITS = """
import multiprocessing, os, sys, threading
from multiprocessing import util
from segment_core import Client
from segment_core.scope import start_thread

client = Client("k", host=os.environ["RECEIVER"], flush_interval=3600, flush_at=2500)


def target():
    client.track("user", "In target")
    exiting = threading.Event()
    # The child's exit has begun: its exit functions run (first up to Python 3.12), or
    # it waits for its threads (first from 3.13), its main thread done.
    util.Finalize(None, exiting.set, exitpriority=10)
    main = threading.main_thread()
    threading.Thread(target=lambda: (main.join(), exiting.set()), daemon=True).start()

    def late(name):
        exiting.wait(60)
        assert client.track("user", "Late", {"thread": name})[0], client.stats()["dropped"]

    threading.Thread(target=late, args=("plain",)).start()  # no daemon: exit waits for it
    start_thread(late, "start_thread")


if __name__ == "__main__":
    child = multiprocessing.get_context(sys.argv[1]).Process(target=target)
    child.start()
    child.join(60)
    assert child.exitcode == 0, child.exitcode
"""


def run_parent_of_a_child(code: str, method: str, receiver: Receiver, tmp_path: Path) -> None:
    """Run ``code``, a script whose child of the ``method`` start method sends to
    ``receiver``; it must end well."""
    script = tmp_path / "parent.py"
    script.write_text(code)
    process = subprocess.run(
        [sys.executable, str(script), method],
        cwd=ROOT,
        env={**os.environ, "RECEIVER": receiver.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_multiprocessing_child_delivers_what_its_threads_track_as_it_exits(
    receiver: Receiver, tmp_path: Path, method: str
) -> None:
    # multiprocessing runs its exit functions before the interpreter waits for the
    # child's threads: the client must wait for them before it shuts down.
    run_parent_of_a_child(CHILD_THREAD_TRACKING_AS_IT_EXITS, method, receiver, tmp_path)
    events = sorted(
        (m["event"], m.get("properties", {}).get("thread", "")) for m in receiver.messages()
    )
    assert events == [("In target", ""), ("Late", "plain"), ("Late", "start_thread")]


CHILD_WITH_A_THREAD_POOL = """
import concurrent.futures, multiprocessing, os, sys, threading
from multiprocessing import util
from segment_core import Client
from segment_core.scope import start_thread

client = Client("k", host=os.environ["RECEIVER"], flush_interval=3600, shutdown_timeout=90)


def target():
    exiting = threading.Event()
    util.Finalize(None, exiting.set, exitpriority=10)  # the child's exit has begun
    main = threading.main_thread()
    threading.Thread(target=lambda: (main.join(), exiting.set()), daemon=True).start()
    # The app's pools (an HTTP client's, a cloud SDK's), kept for the process's life:
    # idle, and busy, at the exit.
    global idle, busy
    idle = concurrent.futures.ThreadPoolExecutor(2)
    idle.submit(client.track, "user", "In a pool").result()
    busy = concurrent.futures.ThreadPoolExecutor(1)
    busy.submit(lambda: (exiting.wait(60), client.track("user", "Late in a pool")))
    # Background work still running at the exit (a moment after it began) may still
    # use a pool.
    def background():
        exiting.wait(60)
        threading.Event().wait(0.3)
        idle.submit(client.track, "user", "Submitted late")

    start_thread(background)


if __name__ == "__main__":
    child = multiprocessing.get_context(sys.argv[1]).Process(target=target)
    child.start()
    child.join(60)  # far below shutdown_timeout: the idle pool is not waited for
    assert child.exitcode == 0, child.exitcode
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_child_s_idle_thread_pool_does_not_hold_its_exit_and_a_busy_one_delivers(
    receiver: Receiver, tmp_path: Path, method: str
) -> None:
    run_parent_of_a_child(CHILD_WITH_A_THREAD_POOL, method, receiver, tmp_path)
    assert sorted(m["event"] for m in receiver.messages()) == [
        "In a pool",
        "Late in a pool",
        "Submitted late",
    ]


FORKED_OFF_ANOTHER_WAY = """
import _thread, logging, os, signal, sys, threading
ended = threading.Event()


def child_work():
    from segment_core import Client  # (first imported here when asked to)

    client = Client("k", host=sys.argv[1], flush_interval=3600)
    client.track("child", "Forked")


def fork():
    if sys.argv[2] == "raw thread that logged":
        logging.getLogger("app").warning("forking")  # its record makes threading know the thread
    pid = os.fork()
    if pid == 0:
        child_work()
        return  # the child's only thread ends: no atexit
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        ended.set()


if sys.argv[2].startswith("raw thread"):
    import segment_core  # imported before the fork
    _thread.start_new_thread(fork, ())
else:  # a Thread, the library imported in the child only
    threading.Thread(target=fork).start()
if not ended.wait(60):
    print("the child never ended", flush=True)
    os.killpg(0, signal.SIGKILL)
"""


@pytest.mark.parametrize("how", ["raw thread", "raw thread that logged", "import after the fork"])
def test_a_child_forked_off_a_raw_thread_or_importing_late_ends_and_delivers(
    receiver: Receiver, how: str
) -> None:
    run_in_a_session_of_its_own(FORKED_OFF_ANOTHER_WAY, receiver.url, how)
    assert [m["event"] for m in receiver.messages()] == ["Forked"]


def test_a_stop_handler_of_the_app_s_own_is_left_alone() -> None:
    # Only gunicorn's and uvicorn's handle_exit start the delivery as a stop begins.
    class Server:
        def handle_exit(self, signum: int, frame: object) -> None:
            pass

    server = Server()
    previous = signal.signal(signal.SIGTERM, server.handle_exit)
    try:
        lifecycle.deliver_as_the_stop_begins()
        assert signal.getsignal(signal.SIGTERM) == server.handle_exit
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    ("module", "name"), [("gunicorn.workers.sync", "SyncWorker"), ("uvicorn.server", "Server")]
)
def test_the_stop_handler_of_a_server_s_subclass_starts_the_delivery(
    module: str, name: str
) -> None:
    # A project's own worker class (psycogreen's, a tuned gthread) or uvicorn Server.
    server_class = getattr(importlib.import_module(module), name)
    server = object.__new__(type("ProjectsOwn", (server_class,), {}))
    previous = signal.signal(signal.SIGTERM, server.handle_exit)
    try:
        assert lifecycle.deliver_as_the_stop_begins()
        registered = signal.getsignal(signal.SIGTERM)
        assert registered != server.handle_exit and getattr(registered, "delivers", False)
    finally:
        signal.signal(signal.SIGTERM, previous)
