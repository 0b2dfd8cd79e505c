"""Plain helpers the spool's tests share: the spool's files, a killed writer, a script
run in a process of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segment_core import _spool_format as fmt
from tests.receiver import Receiver

#: The project's root: scripts run in a process of their own run from there.
ROOT = Path(__file__).resolve().parents[3]
#: Client options that keep messages in the buffer (and on disk) until a flush.
HOLD = {"flush_at": 2500, "flush_interval": 3600.0}


def spool_files(spool_dir: Path, suffix: str = "") -> list[Path]:
    return sorted(p for p in spool_dir.glob("*/*") if p.name.endswith(suffix))


def used_length(data: bytes) -> int:
    """Where the records of a segment end (a live or killed writer's file has zeros after)."""
    records = fmt.read_records(data).records
    return len(fmt.FILE_HEADER) + sum(fmt.RECORD_OVERHEAD + len(m) for _, m in records)


def spooled_messages(spool_dir: Path) -> list[bytes]:
    found = []
    for path in spool_files(spool_dir, fmt.SEGMENT_SUFFIX):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a live client removed it meanwhile
            continue
        found += [message for _, message in fmt.read_records(data).records]
    return found


def delivered(receiver: Receiver) -> list[int]:
    return sorted(m["properties"]["i"] for m in receiver.messages())


def poll(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.02)


#: Has a writer keep its files where releases before the host was read as requests
#: go to it did (the host hashed as written, less a trailing "/").
AS_AN_EARLIER_RELEASE = """
import segment_core._spool_format as fmt
_current = fmt.key_directory
fmt.key_directory = lambda *where: fmt.legacy_key_directory(*where) or _current(*where)
"""


def run_writer(
    spool_dir: Path,
    host: str,
    count: int,
    *,
    key: str = "test-key",
    preamble: str = "",
    **options: Any,
) -> None:
    """A separate process tracks ``count`` events and is SIGKILLed before sending any.

    The spool directory depends on the write key and the host: give the host the
    adopting client will use. ``preamble``: code run first.
    """
    script = f"""
import os, sys
{preamble}
from segment_core import Client
client = Client({key!r}, host={host!r}, spool_dir={str(spool_dir)!r}, **{dict(HOLD, **options)!r})
for i in range({count}):
    client.track("user", "Spooled", {{"i": i, "pid": os.getpid()}})
print("tracked", flush=True)
sys.stdin.read()
"""
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"tracked\n"
    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    process.stdin.close()  # type: ignore[union-attr]
    process.stdout.close()


def run_script(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
