"""Files of dead processes a client must not take as its own to deliver or delete: another
release's format, files it may not read; and what a killed process left half removed."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from segment_core import _spool_format as fmt
from tests.core.spool.helpers import ROOT, delivered, poll, run_writer, spool_files
from tests.receiver import Receiver


def message(i: int) -> bytes:
    fields = {"type": "track", "event": "E", "userId": "u", "messageId": f"m-{i}"}
    properties = {"timestamp": "2024-01-01T00:00:00Z", "properties": {"i": i}}
    return json.dumps({**fields, **properties}).encode()


def wait_for_scans(client: Any, more: int) -> None:
    seen = client.stats()["spool"]["scans"]
    poll(lambda: client.stats()["spool"]["scans"] >= seen + more, what=f"{more} more looks")


# -- another release's format --------------------------------------------------------------


def test_a_segment_of_another_format_version_is_left_alone(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_writer(spool_dir, receiver.url, 5)  # a writer of this release, delivered as usual
    directory = spool_files(spool_dir)[0].parent
    # A newer release's files: records framed some other way, and (without a lock file)
    # records that look like this release's under the newer header.
    newer = directory / "111-aaa-11111111.000000.seg"
    newer.write_bytes(b"SGSPOOL\x02" + b"".join(b"\x00SG2" + message(i) for i in range(9)))
    (directory / "111-aaa-11111111.lock").touch()
    lookalike = directory / "222-bbb-22222222.000000.seg"
    lookalike.write_bytes(
        b"SGSPOOL\x07" + b"".join(fmt.encode_record(i, message(100 + i)) for i in range(3))
    )
    garbage = directory / "333-ccc-33333333.000000.seg"
    garbage.write_bytes(b"\x01garbage, no header" * 50)  # truly damaged: removed
    kept = {path: path.read_bytes() for path in (newer, lookalike)}
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        assert client.flush(20)
        wait_for_scans(client, 3)
    assert delivered(receiver) == list(range(5))
    stats = client.stats()["spool"]
    assert (stats["unknown_version"], stats["damaged"], stats["adopted"]) == (2, 1, 5)
    said = [r.getMessage() for r in caplog.records if "format version" in r.getMessage()]
    assert said == [
        f"Segment spool file {newer} is in format version 2, which this release does not "
        "read; it is left on disk for a release that does",
        f"Segment spool file {lookalike} is in format version 7, which this release does not "
        "read; it is left on disk for a release that does",
    ]
    left = [newer, directory / "111-aaa-11111111.lock", lookalike]
    poll(lambda: spool_files(spool_dir) == left, what="the rest delivered and removed")
    assert {path: path.read_bytes() for path in kept} == kept


def test_a_fifo_named_like_a_spool_file_is_passed_over(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    """Reading a FIFO waits for a writer: one named like a dead writer's segment or
    acknowledgements (a stray ``mkfifo``) must not stop the spool from delivering."""
    run_writer(spool_dir, receiver.url, 5)
    directory = spool_files(spool_dir)[0].parent
    os.mkfifo(directory / "111-aaa-11111111.000000.seg")
    (directory / "111-aaa-11111111.lock").touch()
    for segment in list(directory.glob("*.seg")):
        acks = segment.with_suffix(".ack")
        if not acks.exists() and segment.name != "111-aaa-11111111.000000.seg":
            os.mkfifo(acks)
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    assert client.flush(20)
    assert delivered(receiver) == list(range(5))
    wait_for_scans(client, 2)
    client.track(user_id="u", event="after", message_id="after")
    assert client.flush(20)
    assert client.stats()["sent"] == 6


# -- what a killed process left half removed -----------------------------------------------


def test_acknowledgements_left_without_their_segment_are_removed(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    run_writer(spool_dir, receiver.url, 5)
    directory = spool_files(spool_dir)[0].parent
    # Killed between the two removals of a finished segment: its acknowledgements stay
    # (this release's and the previous one's), with the lock file or without it.
    (directory / "4242-1a2394df65e-dbad68f3.lock").touch()
    (directory / "4242-1a2394df65e-dbad68f3.000037.acks").write_bytes(fmt.encode_acks([0, 1]))
    (directory / "4242-1a2394df65e-dbad68f3.000036.ack").write_bytes(struct.pack("<2I", 0, 1))
    (directory / "5151-1a2394df65e-0badf00d.000002.acks").write_bytes(fmt.encode_acks([0]))
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    assert client.flush(20)
    assert delivered(receiver) == list(range(5))
    poll(lambda: not spool_files(spool_dir), what="everything removed")


# -- files this process may not read -------------------------------------------------------


def without_permission_overrides(probe: Path) -> list[str]:
    """The command prefix that runs a process to which file modes apply (as root: without
    CAP_DAC_OVERRIDE and the like); the test is skipped where there is none."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and no setpriv to drop CAP_DAC_OVERRIDE with")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    probe.write_text("secret")
    probe.chmod(0)
    code = "import sys\ntry:\n    open(sys.argv[1])\nexcept PermissionError:\n    print('denied')"
    done = subprocess.run(
        [*prefix, sys.executable, "-c", code, str(probe)], capture_output=True, text=True
    )
    if done.stdout.strip() != "denied":
        pytest.skip(f"cannot run a process to which file modes apply here: {done.stderr.strip()}")
    return prefix


ADOPTER = """
import json, logging, sys, time
from segment_core import Client
logging.basicConfig(filename=sys.argv[3], level=logging.WARNING)
client = Client("test-key", host=sys.argv[1], spool_dir=sys.argv[2], flush_interval=0.2)
assert client.track("u", "Own", {"i": -1})[0]
delivered = client.flush(20)
seen = client.stats()["spool"]["scans"]
deadline = time.monotonic() + 30
while client.stats()["spool"]["scans"] < seen + 3:  # three more looks at the directory
    assert time.monotonic() < deadline, "no more looks"
    time.sleep(0.02)
print(json.dumps([delivered, client.stats()["spool"]]))
client.shutdown(5)
"""


@pytest.mark.parametrize("unreadable", ["every file", "the segment", "the segment, no lock"])
def test_a_dead_writers_files_this_process_may_not_read_are_said_once_and_left(
    receiver: Receiver, spool_dir: Path, tmp_path: Path, unreadable: str
) -> None:
    # A command run as another user, killed: its files (mode 0600) are not the app's.
    prefix = without_permission_overrides(tmp_path / "probe")
    run_writer(spool_dir, receiver.url, 20)
    [lock] = spool_files(spool_dir, fmt.LOCK_SUFFIX)
    segments = spool_files(spool_dir, fmt.SEGMENT_SUFFIX)
    if unreadable == "the segment, no lock":
        lock.unlink()
    for path in spool_files(spool_dir) if unreadable == "every file" else segments:
        path.chmod(0)
    left = spool_files(spool_dir)
    named = lock if unreadable == "every file" else segments[0]
    log = tmp_path / "adopter.log"
    process = subprocess.run(
        [*prefix, sys.executable, "-c", ADOPTER, receiver.url, str(spool_dir), str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    said = [line for line in log.read_text().splitlines() if "permission" in line]
    assert len(said) == 1, said
    assert f"lacks permission to open the Segment spool file {named} (owner uid" in said[0]
    ok, stats = json.loads(process.stdout)
    assert ok and stats["unreadable"] == 1 and stats["adopted"] == 0
    assert delivered(receiver) == [-1]
    assert spool_files(spool_dir) == left  # nothing removed, no lock file of its own left
