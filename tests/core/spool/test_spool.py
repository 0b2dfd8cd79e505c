"""The on-disk spool: written before track() returns, removed once delivered, adopted
from dead processes, bounded, and never fatal when the disk misbehaves."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from segment_core import Client
from segment_core import _spool_format as fmt
from segment_core.config import DEFAULT_SPOOL_MAX_BYTES, Config
from segment_core.spool import MAX_ADOPTED_WRITERS
from tests.core.spool.helpers import (
    AS_AN_EARLIER_RELEASE,
    HOLD,
    ROOT,
    poll,
    run_script,
    run_writer,
    spool_files,
    spooled_messages,
    used_length,
)
from tests.e2e.servers import free_port
from tests.receiver import Fault, Receiver


@pytest.fixture
def dead_host() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- options ---------------------------------------------------------------------------


def test_spool_options_defaults_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SEGMENT_SPOOL_DIR", raising=False)
    config = Config.from_options("k")
    assert (config.spool_dir, config.spool_max_bytes, config.spool_fsync) == (
        None,
        DEFAULT_SPOOL_MAX_BYTES,
        "never",
    )
    monkeypatch.setenv("SEGMENT_SPOOL_DIR", str(tmp_path))
    assert Config.from_options("k").spool_dir == str(tmp_path)
    assert Config.from_options("k", spool_dir=tmp_path / "x").spool_dir == str(tmp_path / "x")
    monkeypatch.chdir(tmp_path)
    assert Config.from_options("k", spool_dir="rel").spool_dir == str(tmp_path / "rel")


def test_a_spool_dir_through_a_link_stays_where_the_link_pointed(tmp_path: Path) -> None:
    # A deploy re-pointing "current" to the next release moves no client's spool.
    (tmp_path / "release-1").mkdir()
    (tmp_path / "current").symlink_to(tmp_path / "release-1")
    config = Config.from_options("k", spool_dir=tmp_path / "current" / "spool")
    assert config.spool_dir == str(tmp_path / "release-1" / "spool")


def test_a_spool_dir_under_the_home_directory_is_expanded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # As an environment file or a container's ENV sets it: no shell expands the "~".
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("SEGMENT_SPOOL_DIR", "~/spool")
    assert Config.from_options("k").spool_dir == str(home / "spool")
    monkeypatch.delenv("SEGMENT_SPOOL_DIR")
    assert Config.from_options("k", spool_dir="~/x").spool_dir == str(home / "x")
    assert Config.from_options("k", spool_dir=Path("~")).spool_dir == str(home)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"spool_dir": 42}, "spool_dir"),
        ({"spool_dir": ""}, "spool_dir"),
        ({"spool_dir": "a\0b"}, "spool_dir"),
        ({"spool_max_bytes": 10}, "spool_max_bytes"),
        ({"spool_max_bytes": "1GB"}, "spool_max_bytes"),
        ({"spool_max_bytes": True}, "spool_max_bytes"),
        ({"spool_fsync": "sometimes"}, "spool_fsync"),
        ({"spool_fsync": None}, "spool_fsync"),
    ],
)
def test_bad_spool_options_are_named(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Config.from_options("k", **options)


def test_without_a_spool_nothing_is_written(
    make_client: Any, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGMENT_SPOOL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    client = make_client()
    assert client.track("u", "E")[0]
    assert client.flush(10)
    assert "spool" not in client.stats()
    assert list(tmp_path.iterdir()) == []


# -- the writer ------------------------------------------------------------------------


def test_a_message_is_on_disk_when_track_returns(make_client: Any, spool_dir: Path) -> None:
    client = make_client(spool_dir=spool_dir, **HOLD)
    for i in range(5):
        accepted, message = client.track("u", "E", {"i": i})
        assert accepted
        assert message["messageId"].encode() in b"".join(spooled_messages(spool_dir))
    [directory] = spool_dir.iterdir()
    assert len(directory.name) == 24 and "test-key" not in directory.name
    names = [p.name for p in directory.iterdir()]
    assert len([n for n in names if n.endswith(".lock")]) == 1
    assert all(n.startswith(f"{os.getpid()}-") for n in names)


def test_a_segment_cut_short_behind_its_back_never_kills_the_app(
    receiver: Receiver, spool_dir: Path
) -> None:
    # ": > file" to free disk: a write into a mapping of the file would die of SIGBUS
    # (so the app runs in a process of its own here).
    script = f"""
import glob, os
from segment_core import Client
client = Client("k", host={receiver.url!r}, spool_dir={str(spool_dir)!r}, **{HOLD!r})
for i in range(10):
    assert client.track("u", "E", {{"i": i}})[0]
[segment] = glob.glob(os.path.join({str(spool_dir)!r}, "*", "*.000000.seg"))
os.truncate(segment, 0)
for i in range(10, 300):
    assert client.track("u", "E", {{"i": i}})[0]
assert client.flush(20)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(300))


def test_flush_is_not_done_before_the_first_look_at_the_disk(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    run_writer(spool_dir, receiver.url, 3000)  # a dead process's messages, on disk
    client = make_client(spool_dir=spool_dir)
    assert client.flush(0.001) is False  # what the first look finds is not delivered yet
    assert client.flush(30) is True
    assert {m["properties"]["i"] for m in receiver.messages()} == set(range(3000))


def test_a_live_lock_file_stays_fresh_and_its_removal_is_noticed(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(spool_dir=spool_dir, **HOLD)
    assert client.track("u", "E", {"i": 0})[0]
    [lock] = spool_files(spool_dir, fmt.LOCK_SUFFIX)
    os.utime(lock, (0, 0))  # as old as can be: a /tmp cleaner's prey
    poll(lambda: lock.stat().st_mtime > time.time() - 60, what="the lock file touched")
    lock.unlink()  # removed all the same: another client would take us for dead
    poll(lambda: client.stats()["spool"]["in_memory_only"], what="the spool to stop")
    # Said by the spool thread just after it stopped the spool.
    poll(lambda: "lock file was removed" in caplog.text, what="the spool's warning")
    for i in range(1, 100):
        assert client.track("u", "E", {"i": i})[0]
    assert client.flush(20)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(100))


def test_delivered_messages_are_removed(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    client = make_client(spool_dir=spool_dir, flush_at=50)
    for i in range(500):
        client.track("u", "E", {"i": i})
    assert client.flush(20)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(500))
    # The quiet, fully delivered segment goes within a tick or two; the lock stays,
    # and an empty segment reserved for the next messages.
    poll(
        lambda: len(spool_files(spool_dir, fmt.SEGMENT_SUFFIX)) <= 1,
        what="delivered segments removed",
    )
    assert spooled_messages(spool_dir) == []
    assert client.stats()["spool"]["pending"] == 0
    client.shutdown(5)
    assert spool_files(spool_dir) == []


def test_a_full_buffer_spills_to_disk_and_loses_nothing(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    client = make_client(spool_dir=spool_dir, max_queue_size=10, flush_at=2500)
    results = [client.track("u", "E", {"i": i})[0] for i in range(300)]
    assert all(results)
    assert client.stats()["spool"]["spilled"] > 0
    assert client.flush(30)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(300))


def test_an_outage_longer_than_the_retry_budget_keeps_messages(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_next(*[Fault(503)] * 30)
    client = make_client(spool_dir=spool_dir, flush_at=10, max_total_backoff_duration=0.05)
    for i in range(40):
        client.track("u", "E", {"i": i})
    poll(lambda: client.stats()["spool"]["kept"] > 0, what="a batch kept")
    assert client.stats()["failed"] == 0
    # The receiver recovers; the live client sends what it kept, each message once.
    assert client.flush(30)
    ids = Counter(m["messageId"] for m in receiver.messages())
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert "kept in the spool" in caplog.text


def test_accepted_counts_each_message_once_however_often_it_is_tried(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # Spilled while the buffer is full, then kept and queued again after each
    # failing round: every message goes through the buffer several times.
    receiver.fail_next(*[Fault(503)] * 12)
    client = make_client(
        spool_dir=spool_dir, max_queue_size=10, flush_at=10, max_total_backoff_duration=0.05
    )
    assert all(client.track("u", "E", {"i": i})[0] for i in range(40))
    poll(lambda: client.stats()["spool"]["kept"] >= 20, what="batches kept")
    assert client.flush(30)
    stats = client.stats()
    assert stats["spool"]["spilled"] > 0
    assert (stats["accepted"], stats["sent"], stats["pending"]) == (40, 40, 0)


def test_flush_waits_for_a_batch_kept_while_it_waits(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # The first batch fails slowly and is kept while flush() waits for the second,
    # which is answered slowly: the spool's own pass (once a second) finds the kept
    # batch meanwhile. flush() returns only once both were delivered.
    receiver.fail_next(Fault(503, delay=0.5), Fault(200, delay=2.5))
    client = make_client(spool_dir=spool_dir, flush_at=10, max_retries=0)
    for i in range(10):
        client.track("u", "E", {"i": i})
    poll(lambda: client.stats()["queued"] == 0, what="the first batch taken")
    for i in range(10, 20):
        client.track("u", "E", {"i": i})
    assert client.flush(30)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(20))
    assert client.stats()["spool"]["kept"] == 10


def _stop_writing_to_disk(client: Client, spool_dir: Path) -> None:
    """Make ``client``'s spool keep new messages in memory only (its lock file removed)."""
    [lock] = spool_files(spool_dir, fmt.LOCK_SUFFIX)
    lock.unlink()
    poll(lambda: client.stats()["spool"]["in_memory_only"], what="the spool to stop")


def test_a_batch_out_of_retries_keeps_what_is_on_disk_and_fails_only_the_rest(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # One batch of messages written to disk and messages the spool could not take:
    # the first stay on disk and are delivered later; only the others fail.
    receiver.fail_next(Fault(503))
    reported: list[list[dict[str, Any]]] = []
    client = make_client(
        spool_dir=spool_dir,
        max_retries=0,
        on_error=lambda error, batch: reported.append(batch),
        **HOLD,
    )
    for i in range(5):
        assert client.track("u", "On disk", {"i": i})[0]
    _stop_writing_to_disk(client, spool_dir)
    for i in range(5, 10):
        assert client.track("u", "In memory", {"i": i})[0]
    assert client.flush(30)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(5))
    assert [sorted(m["properties"]["i"] for m in batch) for batch in reported] == [[5, 6, 7, 8, 9]]
    stats = client.stats()
    assert (stats["failed"], stats["sent"], stats["spool"]["kept"]) == (5, 5, 5)


def test_a_batch_stopped_by_shutdown_leaves_what_is_on_disk_for_the_next_client(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    receiver.fail_next(Fault(503))
    reported: list[list[dict[str, Any]]] = []
    first = Client(  # shut down here, once (a second shutdown would wait for what stays)
        "test-key",
        host=receiver.url,
        spool_dir=spool_dir,
        retry_backoff_min=30,
        retry_backoff_max=60,
        on_error=lambda error, batch: reported.append(batch),
        **HOLD,
    )
    for i in range(5):
        assert first.track("u", "On disk", {"i": i})[0]
    _stop_writing_to_disk(first, spool_dir)
    for i in range(5, 10):
        assert first.track("u", "In memory", {"i": i})[0]
    first.flush(0)  # sent now; answered 503, the retry waits 30 s or more
    poll(lambda: first.stats()["retries"] == 1, what="a retry planned")
    assert first.shutdown(0.5) is False
    poll(lambda: first.stats()["failed"], what="the batch stopped")
    assert first.stats()["failed"] == 5
    assert [sorted(m["properties"]["i"] for m in batch) for batch in reported] == [[5, 6, 7, 8, 9]]
    second = make_client(spool_dir=spool_dir)
    assert second.flush(20)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(5))
    assert second.stats()["spool"]["adopted"] == 5


def test_a_permanent_rejection_is_not_retried_forever(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    receiver.fail_next(Fault(400))
    client = make_client(spool_dir=spool_dir, flush_at=3)
    for i in range(3):
        client.track("u", "E", {"i": i})
    assert client.flush(10)
    assert client.stats()["failed"] == 3
    client.shutdown(5)
    assert spool_files(spool_dir) == []


def test_the_spool_is_bounded(make_client: Any, spool_dir: Path, dead_host: str) -> None:
    # Past the bound, messages are refused as by a full buffer (the buffer itself, full,
    # spills to disk while the bound has room).
    limit = 1024 * 1024
    client = make_client(
        spool_dir=spool_dir, spool_max_bytes=limit, host=dead_host, max_queue_size=50, **HOLD
    )
    body = {"text": "x" * 4000}
    refused = 0
    for i in range(400):
        if not client.track("u", "E", {"i": i, **body})[0]:
            refused += 1
    stats = client.stats()
    assert refused > 100  # no room on disk for these
    assert stats["dropped"]["queue_full"] == stats["spool"]["refused"] == refused
    assert sum(p.stat().st_size for p in spool_files(spool_dir)) <= limit


def test_writers_making_their_files_at_once_never_pass_the_bound_together(
    make_client: Any, spool_dir: Path
) -> None:
    # 24 writers start on an empty spool at once, each making a first file and a next
    # one (64 KiB each): 3 MiB wanted, against a bound of 1 MiB.
    limit = 1024 * 1024
    writers = [make_client(spool_dir=spool_dir, spool_max_bytes=limit, **HOLD) for _ in range(24)]
    poll(lambda: all(w.stats()["spool"]["scans"] for w in writers), what="first looks")
    looks = []
    refused = 0
    for writer in writers:
        refused += not writer.track("u", "E")[0]  # on disk, or refused past the bound
        looks.append((writer, writer.stats()["spool"]["scans"]))
    poll(  # each has made its next file, or given it up
        lambda: all(w.stats()["spool"]["scans"] >= seen + 2 for w, seen in looks),
        what="the next files",
    )
    assert sum(p.stat().st_size for p in spool_files(spool_dir)) <= limit
    assert refused > 0 and sum(w.stats()["spool"]["refused"] for w in writers) == refused


def test_the_next_files_idle_processes_hold_ready_cost_no_message(
    receiver: Receiver, spool_dir: Path
) -> None:
    # Each writer keeps its next file reserved, empty, while the writers' files take at
    # most half the bound; with more writers than that (twelve of the smallest files'
    # pairs would take 1.5 MiB here), none does. Idle writers never fill the bound with
    # nothing in it: a newcomer's messages all go to disk.
    limit = 1024 * 1024
    options = {"host": receiver.url, "spool_dir": str(spool_dir), "spool_max_bytes": limit}
    idle = [Client("k", **options, **HOLD) for _ in range(12)]
    try:
        for client in idle:
            assert client.track("u", "Idle")[0]
        assert all(client.flush(10) for client in idle)
        looks = [(client, client.stats()["spool"]["scans"]) for client in idle]
        poll(
            lambda: all(c.stats()["spool"]["scans"] >= seen + 2 for c, seen in looks),
            what="every writer measuring the directory",
        )
        busy = Client("k", **options)
        accepted = sum(busy.track("u", "Busy", {"i": i})[0] for i in range(300))
        assert busy.flush(10)
        assert accepted == 300 and busy.stats()["spool"]["refused"] == 0
        assert Counter(m["event"] for m in receiver.messages()) == {"Idle": 12, "Busy": 300}
        busy.shutdown(10)
    finally:
        for client in idle:
            client.shutdown(10)


def test_filled_segments_are_cut_to_their_records_and_all_delivered(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # 64 KiB segments: 200 messages of ~1.5 KB fill several of them.
    client = make_client(spool_dir=spool_dir, spool_max_bytes=1024 * 1024, **HOLD)
    for i in range(200):
        assert client.track("u", "E", {"i": i, "text": "x" * 1500})[0]

    def filled_are_cut() -> bool:
        segments = [p.read_bytes() for p in spool_files(spool_dir, fmt.SEGMENT_SUFFIX)]
        cut = [data for data in segments if len(data) == used_length(data)]
        # All but the one being written and the spare made ahead of need.
        return len(segments) >= 4 and len(cut) >= len(segments) - 2

    poll(filled_are_cut, what="filled segments truncated to their records")
    on_disk = spooled_messages(spool_dir)
    assert len(on_disk) == 200 and len(set(on_disk)) == 200
    assert client.flush(20)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(200))
    client.shutdown(5)
    assert spool_files(spool_dir) == []


def test_fsync_always_still_delivers(make_client: Any, receiver: Receiver, spool_dir: Path) -> None:
    client = make_client(spool_dir=spool_dir, spool_fsync="always")
    for i in range(20):
        client.track("u", "E", {"i": i})
    assert client.flush(10)
    assert len(receiver.messages()) == 20


# -- a disk that misbehaves ---------------------------------------------------------------


def test_an_unusable_directory_falls_back_to_memory_with_one_warning(
    make_client: Any, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    client = make_client(spool_dir=blocker / "spool")
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        assert all(client.track("u", "E", {"i": i})[0] for i in range(30))
    assert client.flush(10)
    assert len(receiver.messages()) == 30
    warnings = [r for r in caplog.records if "spool" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert client.stats()["spool"]["in_memory_only"] is True


def test_a_shutdown_names_what_it_leaves_in_memory_only(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A host that never answers: of the batch still waiting, what is on disk stays for
    # the next client; the rest fails (on_failure hears of it before shutdown returns),
    # and the log says so.
    failed: list[int] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = Client(
            "test-key",
            host=url,
            spool_dir=spool_dir,
            timeout=30,
            on_failure=lambda message, error: failed.append(message["properties"]["i"]),
            **HOLD,
        )
        for i in range(2):
            assert client.track("u", "On disk", {"i": i})[0]
        _stop_writing_to_disk(client, spool_dir)
        for i in range(2, 5):
            assert client.track("u", "In memory", {"i": i})[0]
        with caplog.at_level(logging.WARNING, logger="segment.core"):
            assert client.shutdown(0.5) is False
        assert sorted(failed) == [2, 3, 4]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Segment client")]
    assert line.startswith(
        f"Segment client shut down with 3 message(s) undelivered to {url}, "
        "held in memory only (not in the spool); last error: a request was still waiting"
    ), line
    kept = [json.loads(message)["properties"]["i"] for message in spooled_messages(spool_dir)]
    assert sorted(kept) == [0, 1]


def test_a_disk_that_fills_up_falls_back_to_memory(receiver: Receiver, spool_dir: Path) -> None:
    # A file size limit makes writes fail the way a full disk does, mid-record.
    process = run_script(
        """
        import resource, signal, sys
        from segment_core import Client
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2], flush_at=100)
        accepted = sum(client.track("u", "E", {"i": i})[0] for i in range(500))
        assert client.flush(20)
        print(accepted, client.stats()["spool"]["in_memory_only"])
        """,
        receiver.url,
        str(spool_dir),
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.split() == ["500", "True"]
    assert stderr.count("unusable") == 1, stderr
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(500))


# -- adoption ---------------------------------------------------------------------------


def test_a_new_client_delivers_what_a_killed_process_left(
    make_client: Any, receiver: Receiver, spool_dir: Path, dead_host: str
) -> None:
    run_writer(spool_dir, receiver.url, 300)
    assert len(spooled_messages(spool_dir)) == 300
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    # Without a message of its own, the new client adopts and delivers.
    messages = receiver.wait_for_messages(300, timeout=30)
    assert sorted(m["properties"]["i"] for m in messages) == list(range(300))
    assert client.stats()["spool"]["adopted"] == 300
    poll(lambda: not spool_files(spool_dir), what="adopted files removed")


def test_two_adopters_never_deliver_the_same_file(
    make_client: Any, receiver: Receiver, spool_dir: Path, dead_host: str
) -> None:
    for _ in range(3):
        run_writer(spool_dir, receiver.url, 200)
    clients = [make_client(spool_dir=spool_dir, flush_interval=0.2) for _ in range(2)]
    receiver.wait_for_messages(600, timeout=30)
    for client in clients:
        assert client.flush(10)
    ids = Counter(m["messageId"] for m in receiver.messages())
    assert len(ids) == 600 and set(ids.values()) == {1}
    assert sum(c.stats()["spool"]["adopted"] for c in clients) == 600


def test_an_outage_holds_a_bounded_number_of_dead_writers_open(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    """Short-lived processes (job work-horses, recycled workers) each leave a writer;
    during an outage an adopter holds the locks of at most MAX_ADOPTED_WRITERS of them
    (one descriptor each), and takes the others as those are delivered."""
    writers = MAX_ADOPTED_WRITERS * 3
    process = run_script(
        f"""
        import os, signal
        from segment_core import Client
        client = Client("test-key", host={receiver.url!r}, spool_dir={str(spool_dir)!r},
                        flush_at=2500, flush_interval=3600.0)
        for n in range({writers}):
            pid = os.fork()
            if pid == 0:  # a work-horse: one event, then gone without delivering it
                client.track("user", "Spooled", {{"n": n}})
                os.kill(os.getpid(), signal.SIGKILL)
            os.waitpid(pid, 0)
        os._exit(0)  # the parent adopts none of them at its exit
        """
    )
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert len(spooled_messages(spool_dir)) == writers

    receiver.fail_next(*[Fault(503)] * 100_000)
    descriptors = len(os.listdir("/proc/self/fd"))
    client = make_client(spool_dir=spool_dir, flush_interval=0.1, max_total_backoff_duration=0.1)
    poll(lambda: client.stats()["spool"]["scans"] >= 3, what="three looks for orphans")
    assert client.stats()["spool"]["adopted"] == MAX_ADOPTED_WRITERS
    assert len(os.listdir("/proc/self/fd")) - descriptors < MAX_ADOPTED_WRITERS + 16

    receiver.faults.clear()  # the outage ends: every writer's turn comes
    # flush() counts the writers still waiting for their turn: done means all of them.
    assert client.flush(60) is True
    messages = receiver.messages()
    assert sorted(m["properties"]["n"] for m in messages) == list(range(writers))
    assert len({m["messageId"] for m in receiver.messages()}) == len(receiver.messages())
    poll(lambda: not spool_files(spool_dir), what="adopted files removed")


def test_a_live_process_files_are_never_taken(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    holder = make_client(spool_dir=spool_dir, **HOLD)
    for i in range(20):
        holder.track("u", "Held", {"i": i})
    other = make_client(spool_dir=spool_dir, flush_interval=0.1)
    other.track("u", "Mine")
    assert other.flush(10)
    poll(lambda: other.stats()["spool"]["scans"] >= 3, what="three looks for orphans")
    assert [m["event"] for m in receiver.messages()] == ["Mine"]
    assert other.stats()["spool"]["adopted"] == 0
    assert holder.flush(10)
    assert len(receiver.messages()) == 21


def test_another_write_key_or_host_is_left_alone(
    make_client: Any, receiver: Receiver, spool_dir: Path, dead_host: str
) -> None:
    run_writer(spool_dir, receiver.url, 10, key="other-key")
    run_writer(spool_dir, dead_host, 10)
    client = make_client(spool_dir=spool_dir)
    client.track("u", "Mine")
    assert client.flush(10)
    poll(lambda: client.stats()["spool"]["scans"] >= 3, what="three looks for orphans")
    assert [m["event"] for m in receiver.messages()] == ["Mine"]
    assert len(spooled_messages(spool_dir)) == 20


def test_a_clean_shutdown_during_an_outage_leaves_messages_for_the_next_client(
    make_client: Any, receiver: Receiver, spool_dir: Path, dead_host: str
) -> None:
    receiver.fail_next(*[Fault(503)] * 10_000)
    first = make_client(spool_dir=spool_dir, flush_at=5, max_total_backoff_duration=0.1)
    for i in range(50):
        first.track("u", "E", {"i": i})
    assert first.shutdown(1) is False
    assert first.stats()["failed"] == 0
    second = make_client(spool_dir=spool_dir)
    poll(lambda: second.stats()["spool"]["adopted"] == 50, what="the first client's files adopted")
    receiver.faults.clear()  # the outage ends
    assert second.flush(20)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(50))


def test_torn_and_garbage_files_are_skipped_and_counted(
    make_client: Any, receiver: Receiver, spool_dir: Path, dead_host: str
) -> None:
    run_writer(spool_dir, receiver.url, 10)
    segment = spool_files(spool_dir, fmt.SEGMENT_SUFFIX)[0]  # then an empty spare one
    data = segment.read_bytes()
    segment.write_bytes(data[: used_length(data) - 20])  # killed mid-write: the last one torn
    garbage = segment.parent / "999-0-deadbeef.000000.seg"
    garbage.write_bytes(os.urandom(5000))  # a writer whose lock file is gone, too
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    messages = receiver.wait_for_messages(9, timeout=30)
    assert sorted(m["properties"]["i"] for m in messages) == list(range(9))
    assert client.stats()["spool"]["damaged"] == 2
    poll(lambda: not spool_files(spool_dir), what="damaged files removed")
    assert client.flush(5)
    assert len(receiver.messages()) == 9


def test_acknowledged_records_of_a_dead_process_are_not_sent_again(
    make_client: Any, receiver: Receiver, spool_dir: Path, dead_host: str
) -> None:
    run_writer(spool_dir, receiver.url, 10)
    segment = spool_files(spool_dir, fmt.SEGMENT_SUFFIX)[0]
    segment.with_suffix(fmt.ACK_SUFFIX).write_bytes(fmt.encode_acks([0, 1, 2]) + b"\x07")
    make_client(spool_dir=spool_dir, flush_interval=0.2)
    messages = receiver.wait_for_messages(7, timeout=30)
    assert sorted(m["properties"]["i"] for m in messages) == list(range(3, 10))


def test_records_with_large_ordinals_are_delivered_and_acknowledged_once(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # A dead writer's segment whose ordinals are beyond what this process numbers its
    # own records with (any u32 is valid in the format).
    directory = Path(fmt.key_directory(str(spool_dir), "test-key", receiver.url))
    directory.mkdir(parents=True)
    ordinals = [0, (1 << 20) - 1, 1 << 20, (1 << 32) - 1]
    records = [
        fmt.encode_record(ordinal, b'{"type":"track","event":"Old","userId":"u",'
                          b'"messageId":"m-%d","properties":{"i":%d}}' % (i, i))
        for i, ordinal in enumerate(ordinals)
    ]  # fmt: skip
    (directory / "999-0-deadbeef.000000.seg").write_bytes(fmt.FILE_HEADER + b"".join(records))
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    messages = receiver.wait_for_messages(4, timeout=30)
    assert sorted(m["properties"]["i"] for m in messages) == [0, 1, 2, 3]
    poll(lambda: not spool_files(spool_dir), what="the adopted file removed once delivered")
    assert client.flush(5)
    assert len(receiver.messages()) == 4
    assert client.stats()["spool"]["adopted"] == 4


@pytest.mark.parametrize("serial", [0, 1, 1023, 1024, 10**6])
def test_a_queued_message_location_names_its_segment_and_ordinal(serial: int) -> None:
    from segment_core import spool

    segment: Any = SimpleNamespace(serial=serial, first=serial << spool._ORDINAL_BITS)
    for ordinal in (0, 1, (1 << 20) - 1, 1 << 20, (1 << 32) - 1):
        assert spool._place(spool._location(segment, ordinal)) == (serial, ordinal)


# -- fork ---------------------------------------------------------------------------------


def test_a_forked_child_writes_its_own_files_and_never_resends_the_parents(
    receiver: Receiver, spool_dir: Path
) -> None:
    process = run_script(
        """
        import os, sys
        from segment_core import Client
        client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2], flush_at=2500,
                        flush_interval=3600)
        for i in range(10):
            client.track("u", "Parent", {"i": i})
        pid = os.fork()
        if pid == 0:
            client.track("u", "Child")
            os._exit(0 if client.shutdown(10) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        print(sorted(p.split("-")[0] for p in os.listdir(client.stats()["spool"]["directory"])
                     if p.endswith(".lock")))
        sys.stdout.flush()
        sys.stdin.read()
        """,
        receiver.url,
        str(spool_dir),
    )
    assert process.stdout is not None and process.stdin is not None
    # The child's own lock file is gone with its files; only the parent's remains.
    assert process.stdout.readline().strip() == repr([str(process.pid)])
    assert [m["event"] for m in receiver.messages()] == ["Child"]
    process.stdin.close()  # the parent returns from main: atexit delivers its ten
    assert process.wait(60) == 0, process.stderr.read()  # type: ignore[union-attr]
    for pipe in (process.stdout, process.stderr):
        pipe.close()  # type: ignore[union-attr]
    assert Counter(m["event"] for m in receiver.messages()) == {"Parent": 10, "Child": 1}
    assert spool_files(spool_dir) == []


def test_multiprocessing_children_deliver_what_they_accepted_as_they_end(
    receiver: Receiver, spool_dir: Path
) -> None:
    # A Pool's workers and a forked Process leave through os._exit(): they deliver
    # as their multiprocessing exit runs, as without a spool.
    process = run_script(
        """
        import multiprocessing, sys
        import segment_core
        from segment_core import Client
        segment_core.default_client = Client(
            "k", host=sys.argv[1], spool_dir=sys.argv[2], flush_at=2500, flush_interval=3600
        )

        def track(label):
            assert segment_core.track("u", "In Child", {"label": label})[0]

        if __name__ == "__main__":
            child = multiprocessing.get_context("fork").Process(target=track, args=("fork",))
            child.start()
            child.join()
            assert child.exitcode == 0
            with multiprocessing.get_context("fork").Pool(2) as pool:
                pool.map(track, [f"pool-{i}" for i in range(4)])
        """,
        receiver.url,
        str(spool_dir),
    )
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    # Delivered by the children themselves: the parent made no call of its own.
    labels = sorted(m["properties"]["label"] for m in receiver.messages())
    assert labels == ["fork", *(f"pool-{i}" for i in range(4))]
    assert spool_files(spool_dir) == []


def test_a_child_forked_from_a_thread_ends_when_that_thread_returns(
    receiver: Receiver, spool_dir: Path
) -> None:
    # The child runs on in the thread that forked it: a spool thread started for it
    # at the fork would keep it alive for ever once that thread returns.
    process = run_script(
        """
        import os, sys, threading
        from segment_core import Client
        client = Client("k", host=sys.argv[1], spool_dir=sys.argv[2])
        client.track("u", "Parent")
        children = []
        thread = threading.Thread(target=lambda: children.append(os.fork()))
        thread.start()
        thread.join()
        if children[0]:
            _, status = os.waitpid(children[0], 0)
            print(os.waitstatus_to_exitcode(status))
        """,
        receiver.url,
        str(spool_dir),
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "0"
    assert [m["event"] for m in receiver.messages()] == ["Parent"]


# -- the format ----------------------------------------------------------------------------


def test_records_read_back_around_damage() -> None:
    good = [fmt.encode_record(i, b'{"i":%d}' % i) for i in range(4)]
    torn = good[3][:-3]
    flipped = bytearray(good[2])
    flipped[-2] ^= 0x01  # one bit of the message
    blob = fmt.FILE_HEADER + good[0] + b"garbage" + good[1] + bytes(flipped) + torn + bytes(100)
    scan = fmt.read_records(blob)
    assert scan.records == [(0, b'{"i":0}'), (1, b'{"i":1}')]
    assert scan.damaged == 3  # the garbage, the flipped bit, the torn record; not the zeros
    assert fmt.read_records(fmt.FILE_HEADER + bytes(4096)).damaged == 0
    assert fmt.read_records(bytes(4096)).damaged == 0  # killed while preparing it
    headless = fmt.read_records(b"junk" + good[0])
    assert (headless.records, headless.damaged) == ([(0, b'{"i":0}')], 1)
    # Intact records that hold no message (another program's, a bug's) are damage
    # too: sent, they would make Segment refuse the good messages of their batch.
    odd = [fmt.encode_record(7, b"this is not json {"), fmt.encode_record(8, b'{"i": ')]
    scan = fmt.read_records(fmt.FILE_HEADER + odd[0] + good[0] + odd[1] + good[1])
    assert (scan.records, scan.damaged) == ([(0, b'{"i":0}'), (1, b'{"i":1}')], 2)


_READ_WITHOUT_ORJSON = """
import json
from segment_core import _spool_format as fmt

good = [fmt.encode_record(i, b'{"i":%d}' % i) for i in range(2)]
odd = [
    fmt.encode_record(7, b"{not json}"),
    fmt.encode_record(8, b'{"name": "' + bytes([0xFF]) + b'"}'),
    fmt.encode_record(9, b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
]
scan = fmt.read_records(fmt.FILE_HEADER + odd[0] + good[0] + odd[1] + odd[2] + good[1])
print(json.dumps([[list(map(str, r)) for r in scan.records], scan.damaged]))
"""


def test_records_are_told_from_damage_without_orjson() -> None:
    # The standard library's decoder judges a record where orjson is not installed:
    # bad UTF-8 and nesting past its recursion limit are damage, not a crash.
    from tests.core.test_hostile_values import BLOCK_ORJSON

    result = subprocess.run(
        [sys.executable, "-c", BLOCK_ORJSON + _READ_WITHOUT_ORJSON],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ROOT},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records, damaged = json.loads(result.stdout)
    assert [offset for offset, _ in records] == ["0", "1"]
    assert damaged == 3


def test_a_second_shutdown_still_reports_what_stays_on_disk(
    make_client: Any, spool_dir: Path, dead_host: str
) -> None:
    client = make_client(host=dead_host, spool_dir=spool_dir, **HOLD)
    for i in range(20):
        client.track("u", "E", {"i": i})
    assert client.shutdown(0.5) is False
    assert client.shutdown(0.5) is False  # "safe to call twice": and as honest


def test_the_same_host_with_a_trailing_slash_adopts_the_orphans(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    run_writer(spool_dir, receiver.url, 50)
    client = make_client(host=receiver.url + "/", spool_dir=spool_dir, flush_interval=0.2)
    assert len(receiver.wait_for_messages(50, timeout=30)) == 50
    assert client.stats()["spool"]["adopted"] == 50


def test_the_same_host_spelled_otherwise_adopts_the_orphans(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # Requests go to the same server: the scheme's case, the default port and a
    # trailing "/" make no other directory.
    port = receiver.url.rpartition(":")[2]
    run_writer(spool_dir, f"HTTP://127.0.0.1:{port}/", 20)
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    assert len(receiver.wait_for_messages(20, timeout=30)) == 20
    assert client.stats()["spool"]["adopted"] == 20


def test_what_an_earlier_release_left_under_another_spelling_is_adopted(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # Before the host was read as requests go to it, "HTTP://127.0.0.1:<port>" had a
    # directory of its own: the upgraded process still delivers what was left there.
    host = "HTTP://127.0.0.1:" + receiver.url.rpartition(":")[2]
    run_writer(spool_dir, host, 20, preamble=AS_AN_EARLIER_RELEASE)
    legacy = fmt.legacy_key_directory(str(spool_dir), "test-key", host)
    assert legacy is not None and os.listdir(legacy)
    client = make_client(host=host, spool_dir=spool_dir, flush_interval=0.2)
    assert len(receiver.wait_for_messages(20, timeout=30)) == 20
    assert client.stats()["spool"]["adopted"] == 20


@pytest.mark.parametrize(
    "spelling",
    [
        "https://api.segment.io/",
        "HTTPS://API.SEGMENT.IO",
        "https://Api.Segment.io",
        "https://api.segment.io:443",
        "Https://api.segment.io:443/",
    ],
)
def test_spellings_of_one_host_share_its_directory(spelling: str) -> None:
    expected = fmt.key_directory("/spool", "k", "https://api.segment.io")
    assert fmt.key_directory("/spool", "k", spelling) == expected


@pytest.mark.parametrize(
    "host",
    [
        "https://api.segment.io",
        "https://events.eu1.segmentapis.com",
        "http://127.0.0.1:8765",
        "http://[::1]:8765",
        "https://proxy.example/Segment",
    ],
)
def test_the_usual_spellings_keep_the_directory_of_earlier_releases(host: str) -> None:
    # A spool an earlier release wrote is still adopted: sha256 of the key and the
    # host as written, less a trailing "/".
    for spelling in (host, host + "/"):
        digest = hashlib.sha256(f"k\0{host}".encode()).hexdigest()[:24]
        assert fmt.key_directory("/spool", "k", spelling) == os.path.join("/spool", digest)


def test_other_destinations_get_other_directories() -> None:
    hosts = [
        "https://api.segment.io",
        "http://api.segment.io",
        "https://api.segment.io:8443",
        "http://api.segment.io:443",
        "https://proxy.example/Segment",
        "https://proxy.example/segment",
    ]
    assert len({fmt.key_directory("/spool", "k", host) for host in hosts}) == len(hosts)


def test_flush_in_an_outage_tries_kept_batches_at_the_spools_pace(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # Out of retries at once (max_retries=0): a flush must not send them back to back.
    receiver.fail_next(*[Fault(503)] * 100_000)
    client = make_client(spool_dir=spool_dir, max_retries=0, flush_interval=0.1)
    for i in range(100):
        client.track("u", "E", {"i": i})
    poll(lambda: client.stats()["spool"]["kept"] > 0, what="a batch kept")
    before = len(receiver.requests)
    assert client.flush(2.0) is False
    assert len(receiver.requests) - before <= 8  # about one pass a second, not hundreds
    receiver.faults.clear()
    assert client.flush(20)
    assert len({m["messageId"] for m in receiver.messages()}) == 100


def test_a_file_that_cannot_be_read_for_a_moment_loses_nothing(
    receiver: Receiver, spool_dir: Path
) -> None:
    # Out of file descriptors while a backlog waits on disk: the files are read
    # again later, not written off as damaged.
    receiver.fail_next(*[Fault(503)] * 100_000)
    script = f"""
import os, resource, sys, time
from segment_core import Client
client = Client("test-key", host={receiver.url!r}, spool_dir={str(spool_dir)!r},
                max_retries=0, flush_interval=0.1)
for i in range(500):
    client.track("u", "Waiting", {{"i": i}})
deadline = time.monotonic() + 20
while client.stats()["spool"]["kept"] == 0 and time.monotonic() < deadline:
    client.flush(0.1)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
client.flush(2.5)  # the spool looks at its files meanwhile, and cannot open them
for fd in held:
    os.close(fd)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print("released", flush=True)
sys.stdin.readline()
print(client.flush(30), client.stats()["spool"]["damaged"], flush=True)
"""
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stdout.readline() == "released\n"
        receiver.faults.clear()  # the server is back
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.stdout.readline().split() == ["True", "0"]
    assert sorted({m["properties"]["i"] for m in receiver.messages()}) == list(range(500))
