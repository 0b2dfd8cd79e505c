"""start_thread: its threads are waited for at exit, whichever thread started them."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from segment_core import Client
from segment_core.lifespan import flush_in_thread
from segment_core.scope import start_thread
from tests.core.test_lifecycle import run_script
from tests.receiver import Receiver


def test_a_thread_started_from_a_daemon_thread_is_not_a_daemon() -> None:
    # Flask's dev server and socketserver's ThreadingMixIn serve requests on daemons.
    started: list[threading.Thread] = []
    request_thread = threading.Thread(
        target=lambda: started.append(start_thread(lambda: None)), daemon=True
    )
    request_thread.start()
    request_thread.join(10)
    [thread] = started
    assert not thread.daemon
    assert start_thread(lambda: None, daemon=True).daemon  # unless asked for


def test_what_it_sends_after_the_daemon_that_started_it_is_gone_is_delivered_at_exit(
    receiver: Receiver,
) -> None:
    process = run_script(
        """
        import sys, threading
        from segment_core import Client
        from segment_core.scope import Analytics, bound, start_thread

        client = Client("k", host=sys.argv[1], flush_interval=3600)

        def send_receipt():
            threading.Event().wait(0.5)  # still working as the main thread returns
            client.track("user", "Receipt Sent")

        def serve_request():
            with bound(Analytics(client, user_id="user")):
                start_thread(send_receipt)

        request_thread = threading.Thread(target=serve_request, daemon=True)
        request_thread.start()
        request_thread.join()
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert [m["event"] for m in receiver.messages()] == ["Receipt Sent"]


def test_a_lifespan_shutdown_that_stops_waiting_for_bound_calls_says_how_many_run(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client("k", host=receiver.url, shutdown_timeout=0.3)
    release = threading.Event()
    threads = [start_thread(release.wait, 30) for _ in range(2)]
    try:
        with caplog.at_level(logging.WARNING, logger="segment.core"):
            asyncio.run(flush_in_thread(client))
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
        client.shutdown(5)
    lines = [r.getMessage() for r in caplog.records if "start_thread" in r.getMessage()]
    assert lines == [
        "segment: 2 call(s) of start_thread or with_binding (or page calls running the "
        "app's hooks) still running after 0.3s of shutdown_timeout at shutdown; events "
        "they send from now on may be lost"
    ]


def test_a_job_process_leaving_through_os_exit_delivers_what_its_threads_send(
    receiver: Receiver,
) -> None:
    process = run_script(
        """
        import os, sys, threading
        from segment_core import Client
        from segment_core.scope import Analytics, bound, shutdown_after_bound_calls, start_thread

        client = Client("k", host=sys.argv[1], flush_interval=3600)

        def send_receipt():
            threading.Event().wait(0.5)  # still working as the job returns
            client.track("user", "Receipt Sent")

        with bound(Analytics(client, user_id="user")):
            start_thread(send_receipt)
        client.track("user", "Job Done")
        delivered = shutdown_after_bound_calls(leave_to_spool=True)
        os._exit(0 if delivered else 3)  # as a job runner's child leaves: no wait for threads
        """,
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert sorted(m["event"] for m in receiver.messages()) == ["Job Done", "Receipt Sent"]


def test_a_job_process_waits_for_its_threads_within_shutdown_timeout(receiver: Receiver) -> None:
    process = run_script(
        """
        import os, sys, threading
        from segment_core import Client
        from segment_core._clock import monotonic
        from segment_core.scope import shutdown_after_bound_calls, start_thread

        client = Client("k", host=sys.argv[1], flush_interval=3600, shutdown_timeout=1)
        never = threading.Event()
        start_thread(never.wait)
        client.track("user", "Job Done")
        started = monotonic()
        shutdown_after_bound_calls(leave_to_spool=False)
        print(monotonic() - started)
        os._exit(0)
        """,
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert 0.9 < float(stdout) < 5  # the wait and the delivery share the second, on a busy machine
    assert (
        "1 call(s) of start_thread or with_binding (or page calls running the app's hooks) "
        "still running after 1s of shutdown_timeout as the process exits; events they "
        "send from now on may be lost"
    ) in stderr
    # Sent while the thread was waited for.
    assert [m["event"] for m in receiver.messages()] == ["Job Done"]


def test_calls_a_wait_gave_up_on_are_not_waited_for_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The process's exit after the app's shutdown: what they send is lost all the same."""
    from segment_core.scope import run_counted, wait_for_bound_calls_or_warn

    release = threading.Event()
    worker = threading.Thread(target=run_counted, args=(release.wait, 30))
    worker.start()
    try:
        wait_for_bound_calls_or_warn(0.1, "at shutdown")
        started = time.monotonic()
        wait_for_bound_calls_or_warn(30, "as the process exits")
        assert time.monotonic() - started < 10
    finally:
        release.set()
        worker.join(10)
    told = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(told) == 1 and told[0].endswith(
        " at shutdown; events they send from now on may be lost"
    )
