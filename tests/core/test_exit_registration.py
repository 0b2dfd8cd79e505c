"""Exit delivery set up as the package is imported, whichever thread makes the first call."""

from __future__ import annotations

import signal

from tests.core.test_lifecycle import run_script
from tests.receiver import Receiver


def _sigterm_when_ready(code: str, receiver: Receiver) -> tuple[int | None, str]:
    process = run_script(code, receiver.url)
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, stderr


def test_sigterm_delivers_when_the_first_call_comes_from_a_worker_thread(
    receiver: Receiver,
) -> None:
    returncode, stderr = _sigterm_when_ready(
        """
        import sys, threading
        from concurrent.futures import ThreadPoolExecutor
        import segment_core as analytics
        analytics.write_key = "k"
        analytics.host = sys.argv[1]
        with ThreadPoolExecutor(4) as executor:
            list(executor.map(lambda i: analytics.track("u", "Job Done", {"i": i}), range(5)))
        print("ready", flush=True)
        while True:  # short waits: a signal landing as one begins is handled after it
            threading.Event().wait(0.1)
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(5))


def test_sigterm_delivers_for_a_client_built_on_a_worker_thread(receiver: Receiver) -> None:
    returncode, stderr = _sigterm_when_ready(
        """
        import sys, threading
        from segment_core import Client
        def consume():
            client = Client("k", host=sys.argv[1], flush_interval=3600)
            client.track("u", "Consumed")
        consumer = threading.Thread(target=consume)
        consumer.start()
        consumer.join()
        print("ready", flush=True)
        while True:  # short waits: a signal landing as one begins is handled after it
            threading.Event().wait(0.1)
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
        print("ready", flush=True)
        while True:  # short waits: a signal landing as one begins is handled after it
            threading.Event().wait(0.1)
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
        import threading
        import segment_core
        print("ready", flush=True)
        while True:  # short waits: a signal landing as one begins is handled after it
            threading.Event().wait(0.1)
        """,
        receiver,
    )
    assert returncode == -signal.SIGTERM, stderr
    assert stderr == ""
    process = run_script("import segment_core")
    _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (0, "")


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
