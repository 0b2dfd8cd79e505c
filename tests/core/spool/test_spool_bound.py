"""The spool's bound: past ``spool_max_bytes`` a call is refused (counted as a full
queue), never accepted into memory only; and the files writers hold ready never fill
the bound while Segment answers."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Any

import pytest

from segment_core import Client
from segment_core import _spool_format as fmt
from tests.core.spool.helpers import HOLD, delivered, poll, run_script
from tests.e2e.servers import free_port
from tests.receiver import Receiver

#: The smallest bound; new segments are then 64 KiB, the smallest size.
SMALL_BOUND = 1024 * 1024
BODY = {"text": "x" * 2000}


def scans(client: Client) -> int:
    count: int = client.stats()["spool"]["scans"]
    return count


def wait_for_scans(client: Client, after: int) -> None:
    poll(lambda: scans(client) > after, what="another look at the directory")


def wait_for_bytes(client: Client, at_most: int) -> None:
    poll(lambda: client.stats()["spool"]["bytes"] <= at_most, what="its files removed")


def test_past_the_bound_calls_are_refused_and_every_accepted_one_survives_a_kill(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    # A process that sends nothing while it runs (as in an outage) tracks past its
    # bound, then is SIGKILLed: each call that returned True must be on disk.
    log = tmp_path / "writer.log"
    process = run_script(
        """
        import json, logging, sys, time
        from segment_core import Client
        logging.basicConfig(filename=sys.argv[3], level=logging.WARNING)
        client = Client(
            "test-key", host=sys.argv[1], spool_dir=sys.argv[2], spool_max_bytes=1 << 20,
            flush_at=2500, flush_interval=3600,
        )
        body = {"text": "x" * 2000}
        calls = []
        while len(calls) < 1500 and all(calls):
            # Stretches of one file each, the spool thread's next file made in between
            # (see test_refusals_at_the_bound_are_said_once_and_room_again_too).
            seen = client.stats()["spool"]["scans"]
            calls += [
                client.track("u", "E", {"i": i, **body})[0]
                for i in range(len(calls), min(len(calls) + 30, 1500))
            ]
            deadline = time.monotonic() + 20
            while all(calls) and client.stats()["spool"]["scans"] <= seen:
                assert time.monotonic() < deadline, "the spool thread never looked again"
                time.sleep(0.01)
        calls += [client.track("u", "E", {"i": i, **body})[0] for i in range(len(calls), 1500)]
        accepted = [i for i, ok in enumerate(calls) if ok]
        stats = client.stats()
        print(json.dumps([accepted, stats["dropped"], stats["spool"]["refused"]]), flush=True)
        sys.stdin.read()
        """,
        receiver.url,
        str(spool_dir),
        str(log),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    accepted, dropped, refused = json.loads(line)
    assert 100 < len(accepted) < 1500  # ~2 KB each: about 500 fit in 1 MiB
    assert dropped == {"queue_full": 1500 - len(accepted)} and refused == 1500 - len(accepted)
    warnings = [line for line in log.read_text().splitlines() if "spool_max_bytes" in line]
    assert len(warnings) == 1, warnings
    assert str(spool_dir) in warnings[0] and "is full (spool_max_bytes=1048576)" in warnings[0]
    assert receiver.messages() == []  # nothing was sent before the kill

    adopter = Client("test-key", host=receiver.url, spool_dir=spool_dir)
    try:
        assert adopter.flush(30)
        assert delivered(receiver) == accepted
    finally:
        adopter.shutdown(5)


def test_refusals_at_the_bound_are_said_once_and_room_again_too(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(spool_dir=spool_dir, spool_max_bytes=SMALL_BOUND, **HOLD)
    directory = client.stats()["spool"]["directory"]
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        calls: list[bool] = []
        while len(calls) < 1500 and all(calls):
            # The spool thread makes the next file in the background, and a burst on a
            # slow machine outruns it (refused while the file is being made): a file
            # holds 30 of these at least, so each stretch rolls to a new file once.
            seen = scans(client)
            calls += [
                client.track("u", "E", {"i": i, **BODY})[0]
                for i in range(len(calls), min(len(calls) + 30, 1500))
            ]
            if all(calls):
                wait_for_scans(client, seen)
        calls += [client.track("u", "E", {"i": i, **BODY})[0] for i in range(len(calls), 1500)]
        accepted = [i for i, ok in enumerate(calls) if ok]
        assert len(accepted) > 100 and not any(calls[-500:])  # ~2 KB each: ~500 fit in 1 MiB
        assert client.flush(20)  # delivered and removed: room again
        poll(lambda: "has room" in caplog.text, what="room again, said")
        assert client.track("u", "E", {"i": 1500, **BODY})[0]
    stats = client.stats()
    refused = 1500 - len(accepted)
    assert stats["dropped"]["queue_full"] == stats["spool"]["refused"] == refused
    said = [r.getMessage() for r in caplog.records if "spool_max_bytes" in r.getMessage()]
    assert said == [
        f"Segment spool at {directory} is full (spool_max_bytes={SMALL_BOUND}); new messages "
        "are refused until delivered ones make room",
        f"Segment spool at {directory} has room under spool_max_bytes again; new messages "
        "are written to it",
    ]
    assert client.flush(20)
    assert delivered(receiver) == [*accepted, 1500]


def test_the_files_many_writers_hold_ready_never_crowd_out_a_message(
    receiver: Receiver, spool_dir: Path
) -> None:
    # Twelve writers, one directory, a bound of sixteen of the smallest files: their
    # current and next files would take 1.5 MiB. Every one writes, then each in turn
    # fills a file and needs a new one; Segment answers, so nothing may be refused.
    options = {"host": receiver.url, "spool_dir": str(spool_dir), "spool_max_bytes": SMALL_BOUND}
    writers = [Client("k", **options, **HOLD) for _ in range(12)]
    try:
        for n, writer in enumerate(writers):
            seen = scans(writer)
            assert writer.track("u", "First", {"i": n})[0]
            wait_for_scans(writer, seen)  # (it has looked after its file: the next is ready)
        for writer, seen in [(writer, scans(writer)) for writer in writers]:
            wait_for_scans(writer, seen + 1)  # (two looks: each has measured the directory)
        for n, writer in enumerate(writers):
            for i in range(40):  # 80 KB: more than a file holds
                assert writer.track("u", "Busy", {"i": 100 * (n + 1) + i, **BODY})[0], n
            assert writer.flush(20)
            wait_for_bytes(writer, 64 * 1024)  # (the filled file goes once delivered)
        for writer in writers:
            assert (writer.stats()["dropped"], writer.stats()["spool"]["refused"]) == ({}, 0)
        expected = list(range(12)) + [100 * (n + 1) + i for n in range(12) for i in range(40)]
        assert delivered(receiver) == sorted(expected)
    finally:
        for writer in writers:
            writer.shutdown(5)


def test_another_write_keys_files_never_take_this_keys_room(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # After a key rotation: a killed process of the old key left a whole bound of files,
    # which no process of the new key may deliver. The new key's calls are taken all
    # the same, and the old key's files stay for a process of that key.
    old = Path(fmt.key_directory(str(spool_dir), "old-key", receiver.url))
    old.mkdir(parents=True)
    record = fmt.encode_record(
        0, b'{"type":"track","event":"Old","userId":"u","messageId":"m-old","properties":{}}'
    )
    segment = old / "999-0-deadbeef.000000.seg"
    segment.write_bytes((fmt.FILE_HEADER + record).ljust(SMALL_BOUND, b"\0"))
    (old / "999-0-deadbeef.lock").touch()
    client = make_client(spool_dir=spool_dir, spool_max_bytes=SMALL_BOUND, **HOLD)
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        calls = [client.track("u", "E", {"i": i})[0] for i in range(100)]
        seen = scans(client)
        wait_for_scans(client, seen)  # (the directory measured since)
        calls.append(client.track("u", "E", {"i": 100})[0])
        assert client.flush(20)
    assert all(calls)
    assert delivered(receiver) == list(range(101))
    stats = client.stats()
    assert (stats["dropped"], stats["spool"]["refused"]) == ({}, 0)
    assert "spool_max_bytes" not in caplog.text
    assert segment.stat().st_size == SMALL_BOUND


def test_the_bound_holds_for_each_write_key_and_host(make_client: Any, spool_dir: Path) -> None:
    # Two write keys in one spool directory, and a host that never answers: each key
    # is refused past its own bound.
    dead_host = f"http://127.0.0.1:{free_port()}"
    clients = [
        make_client(write_key=key, host=dead_host, spool_dir=spool_dir,
                    spool_max_bytes=SMALL_BOUND, **HOLD)
        for key in ("key-a", "key-b")
    ]  # fmt: skip
    for client in clients:
        calls = [client.track("u", "E", {"i": i, **BODY})[0] for i in range(1500)]
        assert any(calls) and not all(calls)
    for client in clients:
        directory = Path(client.stats()["spool"]["directory"])
        assert sum(p.stat().st_size for p in directory.iterdir()) <= SMALL_BOUND
