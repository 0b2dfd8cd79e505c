"""The OS refuses the sender thread: calls are still accepted, and delivered.

The refusal is real: the child process limits its address space (RLIMIT_AS) below
what one more thread stack needs, as a process at its thread or memory limit is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.core.test_lifecycle import run_script
from tests.receiver import Receiver

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")

#: Puts the child where no thread can start, then lets it start threads again.
NO_MORE_THREADS = """
import resource, threading

def address_space() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmSize:"))
    return int(line.split()[1]) * 1024

_, HARD = resource.getrlimit(resource.RLIMIT_AS)
threading.stack_size(64 * 1024 * 1024)

def refuse_threads():
    resource.setrlimit(resource.RLIMIT_AS, (address_space() + 32 * 1024 * 1024, HARD))
    try:
        threading.Thread(target=print).start()
    except RuntimeError:
        return
    raise AssertionError("a thread still started")

def allow_threads():
    resource.setrlimit(resource.RLIMIT_AS, (HARD, HARD))
"""


def test_calls_are_accepted_and_flush_delivers_when_no_thread_can_start(
    receiver: Receiver,
) -> None:
    process = run_script(
        NO_MORE_THREADS
        + """
import sys
from pathlib import Path
from segment_core import Client
client = Client("k", host=sys.argv[1], flush_interval=3600)
refuse_threads()
print("accepted:", [client.track("u", "No Thread", {"i": i})[0] for i in range(3)])
print("queued:", client.stats()["queued"])
print("flushed:", client.flush(10))
allow_threads()
client.track("u", "Thread Again")  # starts the sender thread
print("senders:", sum(t.name.startswith("segment-sender") for t in threading.enumerate()))
print("flushed:", client.flush(10))
""",
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == [
        "accepted: [True, True, True]",
        "queued: 3",
        "flushed: True",
        "senders: 1",
        "flushed: True",
    ]
    assert [m["event"] for m in receiver.messages()] == ["No Thread"] * 3 + ["Thread Again"]
    assert stderr.count("could not start a sender thread") == 1, stderr


def test_flush_sending_itself_waits_for_what_a_delivery_hook_tracked(
    receiver: Receiver,
) -> None:
    # flush() delivers on its own thread, whose hooks' calls it waits for too.
    process = run_script(
        NO_MORE_THREADS
        + """
import sys
from segment_core import Client

def follow_up(message):
    if message["event"] == "Ordered":
        assert client.flush(30)  # on the flushing thread itself: it waits for nothing
        client.track("u", "Delivery Reported")

client = Client("k", host=sys.argv[1], flush_interval=3600, on_success=follow_up)
refuse_threads()
client.track("u", "Ordered")
print("flushed:", client.flush(10), "pending:", client.stats()["pending"])
""",
        receiver.url,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == ["flushed: True pending: 0"]
    assert [m["event"] for m in receiver.messages()] == ["Ordered", "Delivery Reported"]


def test_what_waits_for_a_thread_is_delivered_at_exit(receiver: Receiver) -> None:
    process = run_script(
        NO_MORE_THREADS
        + """
import sys
from pathlib import Path
import segment_core as analytics
analytics.write_key = "k"
analytics.host = sys.argv[1]
refuse_threads()
for i in range(5):
    assert analytics.track("u", "Before Exit", {"i": i})[0]
""",
        receiver.url,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(5))


def test_a_spooled_client_made_when_no_thread_can_start_delivers_and_exits_quietly(
    receiver: Receiver, tmp_path: Path
) -> None:
    # As an app's atexit handler on Python 3.12+, where no thread starts any more.
    process = run_script(
        NO_MORE_THREADS
        + """
import sys
from pathlib import Path
from segment_core import Client
refuse_threads()
client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2], flush_interval=3600)
print("accepted:", [client.track("u", "No Thread", {"i": i})[0] for i in range(3)])
print("flushed:", client.flush(10))
print("closed:", client.shutdown(10))
""",
        receiver.url,
        str(tmp_path / "spool"),
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == ["accepted: [True, True, True]", "flushed: True", "closed: True"]
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == [0, 1, 2]
    assert "Traceback" not in stderr and "spool thread could not start" in stderr
    assert not [
        path for path in (tmp_path / "spool").rglob("*") if path.is_file() and path.suffix == ".seg"
    ]
