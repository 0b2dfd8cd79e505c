"""The spool's files under outside hands: a cleaner of old files, a program that removes
them, and a disk that fills up for a while."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from segment_core import _spool_format as fmt
from tests.core.spool.helpers import HOLD, ROOT, poll
from tests.receiver import Fault, Receiver

#: 64 KiB segments: a few hundred records fill one.
SMALL_SEGMENTS = {"spool_max_bytes": 1024 * 1024}


def segments(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("*/*" + fmt.SEGMENT_SUFFIX))


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(message) for _, message in fmt.read_records(path.read_bytes()).records]


# -- a cleaner of old files ----------------------------------------------------------------


def test_every_file_a_live_process_holds_stays_fresh(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    client = make_client(spool_dir=spool_dir, **HOLD)
    assert client.track("u", "E", {"i": 0})[0]
    assert client.flush(10)
    # Delivered and quiet: the lock file, and the empty next segment held ready.
    poll(lambda: len(segments(spool_dir)) == 1, what="only the spare left")
    files = sorted(spool_dir.glob("*/*"))
    for path in files:
        os.utime(path, (0, 0))  # days old, for a cleaner of /tmp
    poll(
        lambda: all(path.stat().st_mtime > time.time() - 60 for path in files),
        what="every file touched",
    )


# -- a program removes files ---------------------------------------------------------------


def test_a_removed_open_segment_is_made_again_with_what_waited_in_it(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A buffer of 10: the rest wait on disk, in the file being written.
    client = make_client(spool_dir=spool_dir, max_queue_size=10, **HOLD)
    ids = [client.track("u", "E", {"i": i})[1]["messageId"] for i in range(300)]
    poll(lambda: len(segments(spool_dir)) == 2, what="the spare")
    for path in segments(spool_dir):
        path.unlink()
    # On disk again (a kill now would lose nothing), the spare too.
    poll(lambda: len(segments(spool_dir)) == 2, what="the files made again")
    on_disk = [m["messageId"] for path in segments(spool_dir) for m in records(path)]
    assert on_disk == ids
    for i in range(300, 400):  # written where the records before them are
        assert client.track("u", "E", {"i": i})[0]
    assert client.flush(30)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(400))
    stats = client.stats()["spool"]
    assert (stats["lost"], stats["damaged"], stats["in_memory_only"]) == (0, 0, False)
    assert caplog.text.count("was removed by another program; made again") == 2


def test_messages_in_a_removed_closed_segment_are_reported_lost_not_damaged(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(spool_dir=spool_dir, max_queue_size=10, **SMALL_SEGMENTS, **HOLD)
    for i in range(600):
        assert client.track("u", "E", {"i": i})[0]
    first = segments(spool_dir)[0]
    # Full, then cut to its records by the spool's thread: closed for good.
    poll(lambda: len(first.read_bytes()) < 64 * 1024, what="the first segment sealed")
    removed = {m["properties"]["i"] for m in records(first)}
    first.unlink()
    with caplog.at_level(logging.ERROR, logger="segment.core"):
        assert client.flush(30)
    delivered = [m["properties"]["i"] for m in receiver.messages()]
    assert len(set(delivered)) == len(delivered)
    # Those the buffer held (or a sender) are delivered; those that waited in the file
    # are lost, and counted so.
    lost = set(range(600)) - set(delivered)
    assert lost and lost <= removed
    counts = client.stats()
    stats = counts["spool"]
    assert (stats["lost"], stats["damaged"]) == (len(lost), 0)
    assert counts["failed"] == len(lost)  # accepted, never sent: failed
    [line] = [
        r.getMessage() for r in caplog.records if "removed by another program" in r.getMessage()
    ]
    assert line.endswith(f"{len(lost)} message(s) waiting in it are lost"), line


def test_messages_overwritten_in_a_live_file_are_reported_lost_not_damaged(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One sender, held by the receiver with the first 5 messages, and a buffer of 10:
    # the next 10 are in memory, the rest wait on disk, in the file being written.
    held = threading.Event()
    receiver.fail_next(Fault(hold=held))
    client = make_client(spool_dir=spool_dir, max_queue_size=10, max_in_flight=1, **HOLD)
    for i in range(5):
        assert client.track("u", "E", {"i": i})[0]
    poll(lambda: receiver.held == 1, what="the sender held with its batch")
    for i in range(5, 300):
        assert client.track("u", "E", {"i": i})[0]
    [first] = [path for path in segments(spool_dir) if records(path)]
    data = bytearray(first.read_bytes())
    used = len(bytes(data).rstrip(b"\0"))
    data[used // 3 : used // 3 + 2000] = b"\xff" * 2000  # another program writes over it
    with first.open("r+b") as file:
        file.write(data)
    waiting = set(range(300)) - {m["properties"]["i"] for m in records(first)}
    held.set()
    with caplog.at_level(logging.ERROR, logger="segment.core"):
        assert client.flush(30)
    delivered = [m["properties"]["i"] for m in receiver.messages()]
    lost = set(range(300)) - set(delivered)
    assert len(set(delivered)) == len(delivered)
    assert len(lost) > 5 and lost == waiting
    # Messages this process knew were waiting: counted one by one, and failed.
    counts = client.stats()
    assert (counts["spool"]["lost"], counts["spool"]["damaged"]) == (len(lost), 0)
    assert counts["failed"] == len(lost)
    [line] = [r.getMessage() for r in caplog.records if "were written" in r.getMessage()]
    assert line.endswith(f"{len(lost)} message(s) waiting in it are lost"), line


# -- a disk that fills up for a while ------------------------------------------------------


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


needs_a_tmpfs = pytest.mark.skipif(
    not private_tmpfs_available(), reason="cannot mount a tmpfs (needs user namespaces or root)"
)


def run_on_a_small_disk(
    script: str, size: str, url: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """``script`` run with a tmpfs of ``size`` mounted for it alone (its first
    argument, the mount point; its second, ``url``)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    shell = f'mount -t tmpfs -o size={size} tmpfs "$1" && exec "$2" -c "$3" "$1" "$4"'
    code = textwrap.dedent(script)
    return subprocess.run(
        ["unshare", "-Urm", "sh", "-c", shell, "sh", str(mount), sys.executable, code, url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


#: What the scripts run on a small disk begin with: the mount and the receiver's
#: URL from their arguments, and a wait with a deadline.
ON_A_SMALL_DISK = """
import glob, json, os, sys, time
from segment_core import Client
from segment_core._spool_format import read_records

mount, host = sys.argv[1:]
spool = os.path.join(mount, "spool")


def wait(condition, what):
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)
"""

FULL_DISK = (
    ON_A_SMALL_DISK
    + """

def on_disk():
    found = set()
    for path in glob.glob(os.path.join(spool, "*", "*.seg")):
        with open(path, "rb") as file:
            data = file.read()
        found |= {json.loads(m)["messageId"] for _, m in read_records(data).records}
    return found


# 256 KiB segments, on a disk of 1 MiB.
client = Client(
    "k", host=host, spool_dir=spool, spool_max_bytes=4 << 20, flush_at=2500, flush_interval=3600
)
pad = "x" * 700  # records of about 1 KiB: 250 fill a segment
client.track("u", "E", {"phase": "first"})


def spare_ready():
    # Made, its blocks written, and taken up as the spare (counted in the spool's
    # bytes): the caller that fills the current file moves to it.
    return client.stats()["spool"]["bytes"] > 400 << 10


wait(spare_ready, "the spare")
ballast = os.path.join(mount, "ballast")
with open(ballast, "wb", buffering=0) as file:  # another program fills the disk
    try:
        while True:
            file.write(bytes(4096))
    except OSError:
        pass
# Past the first segment into the spare, whose blocks are reserved; no next one can
# be made now.
full = [client.track("u", "E", {"phase": "full", "pad": pad})[1] for _ in range(400)]
wait(lambda: client.stats()["spool"]["disk_full"], "the disk found full")
stats = client.stats()["spool"]
print(json.dumps({
    "in_memory_only": stats["in_memory_only"],
    "refused": stats["refused"],
    "full_on_disk": {m["messageId"] for m in full} <= on_disk(),
}), flush=True)
os.unlink(ballast)  # room again
wait(lambda: not client.stats()["spool"]["disk_full"], "room found again")
after = [client.track("u", "E", {"phase": "after"})[1] for _ in range(50)]
stats = client.stats()["spool"]
print(json.dumps({
    "in_memory_only": stats["in_memory_only"],
    "after_on_disk": {m["messageId"] for m in after} <= on_disk(),
    "delivered": client.flush(30),
}), flush=True)
"""
)


@needs_a_tmpfs
def test_a_disk_full_for_a_while_keeps_the_current_file_and_comes_back_to_the_disk(
    receiver: Receiver, tmp_path: Path
) -> None:
    done = run_on_a_small_disk(FULL_DISK, "1m", receiver.url, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    while_full, after = (json.loads(line) for line in done.stdout.splitlines())
    # Full: the file being written keeps taking records; nothing is refused yet.
    assert while_full == {"in_memory_only": False, "refused": 0, "full_on_disk": True}
    assert after == {"in_memory_only": False, "after_on_disk": True, "delivered": True}
    assert done.stderr.count("no room on the disk for the Segment spool") == 1, done.stderr
    assert done.stderr.count("has room on the disk again") == 1, done.stderr
    phases = [m["properties"]["phase"] for m in receiver.messages()]
    assert (phases.count("first"), phases.count("full"), phases.count("after")) == (1, 400, 50)


NO_SPARE_FULL_DISK = (
    ON_A_SMALL_DISK
    + """
# Three writers at the least bound: no next file kept ready, each made as needed.
clients = [
    Client("k", host=host, spool_dir=spool, spool_max_bytes=1 << 20, flush_at=2500,
           flush_interval=3600)
    for _ in range(3)
]
for client in clients:
    client.track("u", "E", {"phase": "first"})
client = clients[0]
ballast = os.path.join(mount, "ballast")
with open(ballast, "wb", buffering=0) as file:  # another program fills the disk
    try:
        while True:
            file.write(bytes(4096))
    except OSError:
        pass
pad = "x" * 700
for _ in range(2000):  # past the current file: no next one can be made
    client.track("u", "E", {"phase": "full", "pad": pad})
    if client.stats()["spool"]["disk_full"]:
        break
assert client.stats()["spool"]["disk_full"], "the disk found full"
os.unlink(ballast)  # room again
wait(lambda: not client.stats()["spool"]["disk_full"], "room found again")
after = [client.track("u", "E", {"phase": "after"})[1] for _ in range(50)]
on_disk = set()
for path in glob.glob(os.path.join(spool, "*", "*.seg")):
    with open(path, "rb") as file:
        data = file.read()
    on_disk |= {m["messageId"] for m in after if m["messageId"].encode() in data}
print(json.dumps({
    "after_on_disk": len(on_disk) == len(after),
    "delivered": all(c.flush(30) for c in clients),
}), flush=True)
"""
)


@needs_a_tmpfs
def test_a_disk_full_for_a_while_leaves_writers_without_a_next_file_back_on_the_disk(
    receiver: Receiver, tmp_path: Path
) -> None:
    done = run_on_a_small_disk(NO_SPARE_FULL_DISK, "2m", receiver.url, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"after_on_disk": True, "delivered": True}
    assert done.stderr.count("has room on the disk again") == 1, done.stderr


FIRST_FILE_ON_A_TINY_DISK = (
    ON_A_SMALL_DISK
    + """
client = Client("k", host=host, spool_dir=spool, flush_at=2500, flush_interval=3600)
client.track("u", "E", {"phase": "first"})
sizes = [os.path.getsize(path) for path in glob.glob(os.path.join(spool, "*", "*.seg"))]
stats = client.stats()["spool"]
print(json.dumps({"disk_full": stats["disk_full"], "sizes": sizes}), flush=True)
assert client.flush(30)
"""
)


@needs_a_tmpfs
def test_the_first_file_on_a_filesystem_smaller_than_the_bound_is_sized_to_fit_it(
    receiver: Receiver, tmp_path: Path
) -> None:
    # 256 KiB: the first file is made by the caller, a 256 KiB one on a larger disk.
    done = run_on_a_small_disk(FIRST_FILE_ON_A_TINY_DISK, "256k", receiver.url, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["disk_full"] is False
    assert found["sizes"] and max(found["sizes"]) <= 128 * 1024, found
    assert "no room on the disk" not in done.stderr, done.stderr
    assert [m["properties"]["phase"] for m in receiver.messages()] == ["first"]


# -- a uWSGI master that forks its workers ---------------------------------------------


@pytest.mark.parametrize("spooled", [True, False], ids=["spool", "no-spool"])
def test_a_uwsgi_master_delivers_as_it_sends_and_runs_no_thread(
    make_client: Any,
    receiver: Receiver,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    spooled: bool,
) -> None:
    # uWSGI forks its workers from the master without taking the GIL: a worker forked
    # while a thread of the master held it waits for it for good; and the master runs
    # no exit handler. Its calls are delivered as they are made.
    monkeypatch.setattr("segment_core._forks.forks_uwsgi_workers", lambda: True)
    before = set(threading.enumerate())
    client = make_client(spool_dir=spool_dir if spooled else None, flush_interval=3600)
    assert client.track("u", "App Loaded")[0]
    assert [m["event"] for m in receiver.messages()] == ["App Loaded"]  # no flush
    assert client.flush(10)
    started = set(threading.enumerate()) - before
    assert [t.name for t in started if t.name.startswith("segment")] == []
    assert client._spool is None or client._spool._thread is None
    # In a worker uWSGI forked: queued, and sent by the sender threads.
    monkeypatch.setattr("segment_core._forks.forks_uwsgi_workers", lambda: False)
    assert client.track("u", "Item Viewed")[0]
    assert [m["event"] for m in receiver.messages()] == ["App Loaded"]
    assert client.flush(10)
    assert [m["event"] for m in receiver.messages()] == ["App Loaded", "Item Viewed"]
