"""Exit delivery: atexit registered as the package is imported, SIGTERM chained from the
main thread once there is something to deliver for, and nothing changed before that."""

from __future__ import annotations

import os
import signal
import textwrap

import pytest

from tests.core.test_lifecycle import run_script
from tests.receiver import Fault, Receiver

#: Ends each script of _sigterm_when_ready: the SIGTERM comes once it is ready.
_WAIT_FOR_SIGTERM = """
import threading
print("ready", flush=True)
while True:  # short waits: a signal landing as one begins is handled after it
    threading.Event().wait(0.1)
"""


def _sigterm_when_ready(
    code: str, receiver: Receiver, env: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """Run ``code``, then wait for SIGTERM; its exit status and stderr."""
    process = run_script(textwrap.dedent(code) + _WAIT_FOR_SIGTERM, receiver.url, env=env)
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, stderr


@pytest.mark.parametrize("key_from", ["module setting", "environment"])
def test_sigterm_delivers_when_the_first_call_comes_from_a_worker_thread(
    receiver: Receiver, key_from: str
) -> None:
    # The main thread only sets things up; every call comes from the executor's threads.
    by_setting = key_from == "module setting"
    returncode, stderr = _sigterm_when_ready(
        """
        import sys
        from concurrent.futures import ThreadPoolExecutor
        import segment_core as analytics
        KEY_LINE
        analytics.host = sys.argv[1]
        with ThreadPoolExecutor(4) as executor:
            list(executor.map(lambda i: analytics.track("u", "Job Done", {"i": i}), range(5)))
        """.replace("KEY_LINE", 'analytics.write_key = "k"' if by_setting else ""),
        receiver,
        env=None if by_setting else {**os.environ, "SEGMENT_WRITE_KEY": "k"},
    )
    assert returncode == -signal.SIGTERM, stderr
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(5))


def test_sigterm_delivers_for_a_client_built_on_a_worker_thread_once_chained_on_the_main_thread(
    receiver: Receiver,
) -> None:
    returncode, stderr = _sigterm_when_ready(
        """
        import signal, sys, threading
        from segment_core import Client, lifecycle
        def consume():
            client = Client("k", host=sys.argv[1], flush_interval=3600)
            client.track("u", "Consumed")
        consumer = threading.Thread(target=consume)
        consumer.start()
        consumer.join()
        # Nothing ran on the main thread to chain it: the documented call does.
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        lifecycle.chain_sigterm()
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert [m["event"] for m in receiver.messages()] == ["Consumed"]


def test_a_client_built_on_the_main_thread_chains_sigterm_after_an_import_on_a_thread(
    receiver: Receiver,
) -> None:
    returncode, stderr = _sigterm_when_ready(
        """
        import signal, sys, threading
        importer = threading.Thread(target=__import__, args=("segment_core",))
        importer.start()
        importer.join()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600)
        caller = threading.Thread(target=client.track, args=("u", "From A Thread"))
        caller.start()
        caller.join()
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert [m["event"] for m in receiver.messages()] == ["From A Thread"]


def test_an_atexit_handler_of_the_app_can_still_track(receiver: Receiver) -> None:
    process = run_script(
        """
        import atexit, sys
        import segment_core as analytics
        analytics.write_key = "k"
        analytics.host = sys.argv[1]

        @atexit.register
        def last_event():
            accepted, _ = analytics.track("u", "Process Stopped")
            print("accepted:", accepted, flush=True)

        analytics.track("u", "Process Started")
        """,
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "accepted: True" in stdout
    assert [m["event"] for m in receiver.messages()] == ["Process Started", "Process Stopped"]


def test_a_process_that_builds_no_client_exits_as_before(receiver: Receiver) -> None:
    returncode, stderr = _sigterm_when_ready(
        """
        import signal
        import segment_core, segment_core.lifecycle
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert stderr == ""
    process = run_script("import segment_core")
    _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (0, "")


@pytest.mark.parametrize("module", ["segment_core._version", "segment_core.scope"])
def test_a_sigterm_while_the_package_is_imported_ends_the_process_as_before(module: str) -> None:
    """With SEGMENT_WRITE_KEY, SIGTERM is chained as the import begins: one that comes
    before the import ended (a pool's worker terminated as it starts) ends the
    process as it would have ended, with no traceback of an import half done."""
    process = run_script(
        """
        import importlib.abc, os, signal, sys

        class SignalOnImport(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == sys.argv[1]:
                    sys.meta_path.remove(self)
                    os.kill(os.getpid(), signal.SIGTERM)
                return None

        sys.meta_path.insert(0, SignalOnImport())
        import segment_core
        print("imported", flush=True)
        """,
        module,
        env={**os.environ, "SEGMENT_WRITE_KEY": "k"},
    )
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (-signal.SIGTERM, "", "")


def test_sigterm_is_chained_again_after_asyncio_set_it_back_to_the_default(
    receiver: Receiver,
) -> None:
    returncode, stderr = _sigterm_when_ready(
        """
        import asyncio, signal, sys
        import segment_core
        from segment_core import Client, lifecycle
        client = Client("k", host=sys.argv[1], flush_interval=3600)

        async def fetch():
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: None)
            client.track("u", "Fetched")

        asyncio.run(fetch())  # its loop sets SIGTERM back to SIG_DFL as it closes
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        lifecycle.chain_sigterm()
        client.track("u", "Processed")
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert sorted(m["event"] for m in receiver.messages()) == ["Fetched", "Processed"]


def test_sigterm_delivers_once_the_package_left_sys_modules(receiver: Receiver) -> None:
    """A tool that took the package out of ``sys.modules`` (a test's reload helper):
    the import ended long before; SIGTERM still delivers."""
    returncode, stderr = _sigterm_when_ready(
        """
        import sys
        from segment_core import Client
        client = Client("k", host=sys.argv[1], flush_interval=3600)
        client.track("u", "Before The Signal")
        del sys.modules["segment_core"]
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert [m["event"] for m in receiver.messages()] == ["Before The Signal"]


def test_a_process_s_exit_waits_for_the_app_s_threads_once(receiver: Receiver) -> None:
    """Each exit hook of a process (a Celery child has three) asks: the threads that
    outlived the first wait are not waited for again."""
    process = run_script(
        """
        import sys, threading
        from segment_core import Client, lifecycle
        client = Client("k", host=sys.argv[1], shutdown_timeout=1)
        client.track("u", "Before The Exit")
        threading.Thread(target=threading.Event().wait).start()  # never ends
        waits = []
        wait = lifecycle._wait_for_app_threads
        lifecycle._wait_for_app_threads = lambda *a, **k: waits.append(1) or wait(*a, **k)
        for _ in range(3):
            lifecycle.shutdown_after_app_threads(leave_to_spool=True)
        print(len(waits), flush=True)
        import os
        os._exit(0)
        """,
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout.strip()) == (0, "1"), stderr
    assert [m["event"] for m in receiver.messages()] == ["Before The Exit"]


def test_what_a_thread_tracks_while_the_exit_waits_is_delivered(receiver: Receiver) -> None:
    """Another thread outlives the wait (a Timer of the app's): what a thread tracks
    meanwhile is sent as it goes, and the delivery keeps time of its own."""
    process = run_script(
        """
        import sys, threading
        from segment_core import Client, lifecycle
        client = Client("k", host=sys.argv[1], shutdown_timeout=4, flush_interval=3600)
        client.track("u", "Before The Exit")
        threading.Thread(target=threading.Event().wait).start()  # never ends
        late = threading.Timer(0.1, lambda: client.track("u", "Tracked While Waiting"))
        late.start()
        lifecycle.shutdown_after_app_threads(leave_to_spool=True)
        import os
        os._exit(0)
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    events = sorted(m["event"] for m in receiver.messages())
    assert events == ["Before The Exit", "Tracked While Waiting"]


def test_importing_the_package_keeps_a_faulthandler_registered_for_sigterm() -> None:
    # faulthandler's handler is C-level: Python still reports SIG_DFL for SIGTERM.
    process = run_script(
        """
        import faulthandler, os, signal, sys
        faulthandler.register(signal.SIGTERM, file=sys.stderr, chain=True)
        import segment_core
        segment_core.write_key = None  # a setting without a key: nothing to deliver for
        os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM, stderr
    assert "Current thread" in stderr or "Stack (most recent call first)" in stderr, stderr


def test_a_sigterm_while_atexit_delivers_lets_that_delivery_finish(receiver: Receiver) -> None:
    receiver.fail_next(Fault(delay=1.0))  # the exit's delivery takes a while
    process = run_script(
        """
        import os, signal, sys, threading, time
        import segment_core as analytics
        from segment_core import lifecycle
        analytics.write_key = "k"
        analytics.host = sys.argv[1]
        analytics.track("u", "Last")

        def terminate_during_the_exit_delivery():  # as a supervisor would
            while not lifecycle._exit_delivery_running:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=terminate_during_the_exit_delivery, daemon=True).start()
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    assert process.returncode == -signal.SIGTERM, stderr  # once delivered, as SIGTERM would
    assert [m["event"] for m in receiver.messages()] == ["Last"]


def test_a_forked_child_that_restores_the_default_sigterm_gets_it_chained_again(
    receiver: Receiver,
) -> None:
    process = run_script(
        """
        import os, signal, sys, threading
        from segment_core import Client
        pid = os.fork()
        if pid == 0:  # as an RQ work-horse does
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            client = Client("k", host=sys.argv[1], flush_interval=3600)
            client.track("u", "In The Child")
            os.kill(os.getpid(), signal.SIGTERM)
            while True:
                threading.Event().wait(0.1)
        _, status = os.waitpid(pid, 0)
        print("child:", os.waitstatus_to_exitcode(status))
        """,
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip() == f"child: {-signal.SIGTERM}"
    assert [m["event"] for m in receiver.messages()] == ["In The Child"]
