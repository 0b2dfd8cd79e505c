"""gevent and eventlet: calls from an OS thread of the event loop's threadpool, and a
client used before the standard library was monkey-patched.

Each script runs in a process of its own (monkey-patching is for the whole process)
and sends to the test's collector.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segment_core.collector.handle import CollectorHandle

ROOT = Path(__file__).resolve().parents[2]
#: The longest a script may run; a client that waits for ever fails the test instead.
SCRIPT_TIMEOUT = 60


def needs(library: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(library) is None, reason=f"{library} is not installed"
    )


def script(*parts: str) -> str:
    """The code of ``parts``, each indented as it likes."""
    return "".join(textwrap.dedent(part) for part in parts)


def run(code: str, *args: str) -> tuple[list[str], str]:
    """Run ``code`` with ``args``; its stdout lines and its stderr, once it exited 0."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")  # eventlet's deprecation warning
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        stdout, stderr = process.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"still running after {SCRIPT_TIMEOUT} s\n{stdout}\n{stderr}")
    assert process.returncode == 0, stderr
    return stdout.splitlines(), stderr


#: ``sent_within(client, n)``: whether ``n`` messages were sent within 10 seconds,
#: while the event loop runs.
SENT_WITHIN = """
import time
def sent_within(client, n, sleep):
    deadline = time.monotonic() + 10
    while client.stats()["sent"] < n and time.monotonic() < deadline:
        sleep(0.02)
    return client.stats()["sent"] == n
"""


def assert_reports_delivered_once_each(collector: CollectorHandle, count: int, stderr: str) -> None:
    """Reports 0 to ``count - 1`` arrived, once each, and the script printed no traceback."""
    delivered = sorted(e["message"]["properties"]["i"] for e in collector.events())
    assert delivered == list(range(count))
    assert "Traceback" not in stderr, stderr


@needs("gevent")
def test_events_tracked_first_from_gevents_threadpool_are_sent_by_the_event_loop(
    segment_collector: CollectorHandle,
) -> None:
    lines, stderr = run(
        script(
            """
        from gevent import monkey; monkey.patch_all()
        import sys, gevent
        from segment_core import Client
        """,
            SENT_WITHIN,
            """
        client = Client("key", host=sys.argv[1], flush_interval=0.1)
        pool = gevent.get_hub().threadpool  # real OS threads, for blocking work
        for i in range(5):
            pool.apply(client.track, ("u", "Report Built", {"i": i}))
        print("sent on time:", sent_within(client, 5, gevent.sleep))
        pool.apply(client.track, ("u", "Report Built", {"i": 5}))
        print("flushed from the pool:", pool.apply(client.flush, (10,)))
        """,
        ),
        segment_collector.url,
    )
    assert lines == ["sent on time: True", "flushed from the pool: True"]
    assert_reports_delivered_once_each(segment_collector, 6, stderr)


@needs("eventlet")
def test_events_tracked_first_from_eventlets_threadpool_are_sent_from_the_next_call(
    segment_collector: CollectorHandle,
) -> None:
    lines, stderr = run(
        script(
            """
        import eventlet; eventlet.monkey_patch()
        import sys, eventlet.tpool
        from segment_core import Client
        """,
            SENT_WITHIN,
            """
        client = Client("key", host=sys.argv[1], flush_interval=0.1)
        for i in range(5):
            eventlet.tpool.execute(client.track, "u", "Report Built", {"i": i})
        print("flushed:", client.flush(10))
        eventlet.tpool.execute(client.track, "u", "Report Built", {"i": 5})
        print("then sent on time:", sent_within(client, 6, eventlet.sleep))
        """,
        ),
        segment_collector.url,
    )
    assert lines == ["flushed: True", "then sent on time: True"]
    assert_reports_delivered_once_each(segment_collector, 6, stderr)


@needs("eventlet")
@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_client_used_before_eventlet_patches_keeps_working_after(
    segment_collector: CollectorHandle, tmp_path: Path, spool: bool
) -> None:
    options = f"spool_dir={str(tmp_path / 'spool')!r}" if spool else ""
    lines, stderr = run(
        script(
            f"""
            import sys, time
            from segment_core import Client
            from segment_core.spool import TICK
            client = Client("key", host=sys.argv[1], {options})
            client.track("u", "Before Patch")
            import eventlet; eventlet.monkey_patch()  # too late: the client made its locks
            """,
            """
            tracked = 1
            def work(i):
                # Past the spool thread's next look, which takes the spool's lock too.
                global tracked
                until = time.monotonic() + 2 * TICK + 0.5
                while time.monotonic() < until:
                    accepted = client.track(f"u{i}", "After Patch")[0]
                    tracked += accepted
                    eventlet.sleep(0.001)
            pool = eventlet.GreenPool()
            for i in range(100):
                pool.spawn(work, i)
            pool.waitall()
            print("flushed:", client.flush(10))
            stats = client.stats()
            print("all sent:", stats["sent"] == stats["accepted"] == tracked, stats["failed"])
            print("tracked:", tracked)
            """,
        ),
        segment_collector.url,
    )
    assert lines[:2] == ["flushed: True", "all sent: True 0"], stderr
    assert segment_collector.summary()["total"] == int(lines[2].removeprefix("tracked: "))
    assert "RuntimeError" not in stderr, stderr
    assert "greenlet.error" not in stderr, stderr
    assert "error while" not in stderr, stderr
