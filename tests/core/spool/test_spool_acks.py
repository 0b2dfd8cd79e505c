"""The spool's acknowledgement files: checked as they are read (a damaged one costs a
message sent again, never one lost), the previous version's still read, and forced
to disk as ``spool_fsync`` says."""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from segment_core import _spool_format as fmt
from tests.core.spool.helpers import ROOT, delivered, poll, run_writer, spool_files
from tests.receiver import Receiver

# -- the format ----------------------------------------------------------------------------


def test_acknowledgements_read_back_around_damage(tmp_path: Path) -> None:
    first, second, third = fmt.encode_acks([0, 1]), fmt.encode_acks([2]), fmt.encode_acks([3, 4])
    flipped = bytearray(second)
    flipped[-1] ^= 0x01  # one bit of an ordinal
    path = tmp_path / "x.000000.acks"
    # Zeros (an appended file a power loss left unwritten), garbage, a changed ordinal,
    # a torn last frame: each skipped and counted, the intact frames around them read.
    path.write_bytes(first + bytes(8) + b"garbage" + bytes(flipped) + third + second[:-2])
    scan = fmt.read_acks(str(path))
    assert (scan.ordinals, scan.damaged) == ({0, 1, 3, 4}, 3)
    path.write_bytes(bytes(8))
    assert (fmt.read_acks(str(path)).ordinals, fmt.read_acks(str(path)).damaged) == (set(), 1)
    missing = fmt.read_acks(str(tmp_path / "none.acks"))
    assert (missing.ordinals, missing.damaged) == (set(), 0)


# -- a dead process's acknowledgements -----------------------------------------------------


def test_a_damaged_acknowledgement_is_counted_and_what_it_named_is_sent_again(
    make_client: Any, receiver: Receiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_writer(spool_dir, receiver.url, 10)
    segment = spool_files(spool_dir, fmt.SEGMENT_SUFFIX)[0]
    acks = segment.with_suffix(fmt.ACK_SUFFIX)
    # Eight zero bytes where an acknowledgement was appended, then an intact one.
    acks.write_bytes(bytes(8) + fmt.encode_acks([5]))
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        assert client.flush(20)
    assert delivered(receiver) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    stats = client.stats()["spool"]
    assert (stats["adopted"], stats["damaged"]) == (9, 1)
    assert f"{acks} is damaged: 1 stretch(es) skipped" in caplog.text
    poll(lambda: not spool_files(spool_dir), what="the adopted files removed")


def test_the_previous_versions_acknowledgements_are_still_read(
    make_client: Any, receiver: Receiver, spool_dir: Path
) -> None:
    # A spool left by the previous version at an upgrade: bare u32 ordinals in ".ack".
    run_writer(spool_dir, receiver.url, 10)
    segment = spool_files(spool_dir, fmt.SEGMENT_SUFFIX)[0]
    segment.with_suffix(fmt.LEGACY_ACK_SUFFIX).write_bytes(struct.pack("<3I", 0, 1, 2) + b"\x07")
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    assert client.flush(20)
    assert delivered(receiver) == list(range(3, 10))
    assert client.stats()["spool"]["damaged"] == 0
    poll(lambda: not spool_files(spool_dir), what="the adopted files removed, both kinds")


# -- forced to disk ------------------------------------------------------------------------


def strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    done = subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True)
    return done.returncode == 0  # (ptrace may be denied in a container)


@pytest.mark.skipif(not strace_works(), reason="needs strace, and ptrace allowed")
@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_acknowledgements_are_forced_to_disk_as_spool_fsync_says(
    receiver: Receiver, spool_dir: Path, tmp_path: Path, policy: str
) -> None:
    trace = tmp_path / "trace.txt"
    script = f"""
import sys
from segment_core import Client
client = Client("k", host={receiver.url!r}, spool_dir={str(spool_dir)!r},
                spool_fsync={policy!r}, flush_interval=0.1)
for i in range(20):
    client.track("u", "E", {{"i": i}})
assert client.flush(20)
print("delivered", flush=True)
sys.stdin.readline()
"""
    command = ["strace", "-f", "-y", "-e", "trace=fdatasync", "-o", str(trace)]
    with subprocess.Popen(
        [*command, sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stdout.readline() == "delivered\n"

        def acks_synced() -> bool:
            return fmt.ACK_SUFFIX + ">" in trace.read_text()

        if policy != "never":
            poll(acks_synced, what="an acknowledgement file forced to disk")
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(30) == 0
    assert acks_synced() is (policy != "never")
    assert delivered(receiver) == list(range(20))


@pytest.mark.parametrize("damage", ["emptied", "zeroed"])
def test_a_dead_writers_file_left_empty_or_zeroed_before_its_last_is_counted_and_said(
    make_client: Any,
    receiver: Receiver,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    # What a power loss can leave of a file whose reserved zeros reached the disk and
    # its records did not: a file of a writer that wrote later ones held messages.
    run_writer(spool_dir, receiver.url, 1500)
    first, *later = spool_files(spool_dir, fmt.SEGMENT_SUFFIX)
    assert later, "the writer filled more than one file"
    size = first.stat().st_size
    first.write_bytes(b"" if damage == "emptied" else bytes(size))
    client = make_client(spool_dir=spool_dir, flush_interval=0.2)
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        assert client.flush(60)
    stats = client.stats()["spool"]
    # (A record the kill tore at the end of the last file is damage too.)
    assert stats["damaged"] >= 1 and 0 < stats["adopted"] < 1500
    assert len(delivered(receiver)) == stats["adopted"]
    assert f"{first} is damaged: 1 stretch(es) skipped" in caplog.text
