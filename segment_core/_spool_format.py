"""The spool's on-disk format: file names, framed records, acknowledgements, locks.

A segment file starts with :data:`FILE_HEADER`, then holds framed records, then
(while its writer lives, or if it died) zeros up to the size reserved for it::

    b"\\x00SGR" | length (u32 LE) | ordinal (u32 LE) | crc32 (u32 LE) | message bytes

The checksum is the CRC-32 of the message seeded with the ordinal, so a damaged
length, ordinal or message fails it (one pass over the bytes). The marker starts
with a NUL byte, which encoded JSON never contains, so after a torn or corrupted
record the reader finds the next record by searching for the marker. The
ordinal numbers the records of a segment. An acknowledgement file next to it
(``.acks``) lists the ordinals already delivered or failed for good, in frames
appended one per write::

    b"\x00SGA" | count (u32 LE) | crc32 (u32 LE) | count ordinals (u32 LE each)

The checksum is the CRC-32 of the ordinals seeded with the count: a frame torn,
zero-filled (an appended file a power loss left unwritten) or overwritten fails
it, and the reader finds the next frame by its marker. The previous version's
``.ack`` file, bare u32 ordinals without a check, is still read.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from segment_core.errors import is_interruption
from segment_core.hosts import DEFAULT_PORTS

try:
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - exercised where orjson cannot be installed
    from json import loads as _json_loads  # type: ignore[assignment]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no spool, the client keeps to memory
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FILE_HEADER",
    "AckScan",
    "Scan",
    "destination",
    "encode_record",
    "key_directory",
    "legacy_key_directory",
    "lock_exclusive",
    "new_writer_id",
    "open_regular",
    "other_version",
    "read_acks",
    "read_legacy_acks",
    "read_records",
]

FILE_HEADER = b"SGSPOOL\x01"
#: What every release's segment starts with; the byte after it is the format version.
_MAGIC = FILE_HEADER[:-1]
MARKER = b"\x00SGR"
_HEAD = struct.Struct("<4sIII")  # marker, length, ordinal, checksum
RECORD_OVERHEAD = _HEAD.size
#: ``pack_head(MARKER, length, ordinal, checksum)``: a record's header; the message
#: follows it (see :func:`encode_record`).
pack_head = _HEAD.pack
#: Larger than any message the client accepts; a bigger length means damage.
MAX_RECORD_BYTES = 1 << 20
ACK_MARKER = b"\x00SGA"
_ACK_HEAD = struct.Struct("<4sII")  # marker, count, checksum

LOCK_SUFFIX = ".lock"
SEGMENT_SUFFIX = ".seg"
ACK_SUFFIX = ".acks"
#: The previous version's acknowledgement files: bare u32 ordinals, unchecked.
LEGACY_ACK_SUFFIX = ".ack"
TEMP_SUFFIX = ".tmp"
_KEY_DIGITS = 24


def key_directory(spool_dir: str, write_key: str, host: str) -> str:
    """The directory for one write key and API host: a hash of both, never the key.

    The host as requests go to it (see :func:`destination`): ``HTTPS://Api.Segment.io:443/``
    is the same host as ``https://api.segment.io``, and shares its directory.
    """
    return _hashed_directory(spool_dir, write_key, destination(host))


def legacy_key_directory(spool_dir: str, write_key: str, host: str) -> str | None:
    """The directory earlier releases kept this write key and host's files in, where
    it is another: they hashed the host only stripped of its trailing ``/``
    (``HTTPS://API.segment.io:443``). What their processes left there is adopted too."""
    written = host.rstrip("/")
    if written == destination(host):
        return None
    return _hashed_directory(spool_dir, write_key, written)


def _hashed_directory(spool_dir: str, write_key: str, host: str) -> str:
    digest = hashlib.sha256(f"{write_key}\0{host}".encode()).hexdigest()[:_KEY_DIGITS]
    return os.path.join(spool_dir, digest)


def destination(host: str) -> str:
    """``host`` as requests go to it: the scheme and the server's name in lower case,
    the scheme's default port left out, no trailing ``/``; the path as it is (a
    server may tell its case apart).

    The usual spelling (``https://api.segment.io``) is returned unchanged, so the
    directory of a spool written by an earlier release stays the same. A value that
    is no URL is only stripped of its trailing ``/``.
    """
    try:
        parts = urlsplit(host)
        port = parts.port
    except ValueError:
        return host.rstrip("/")
    name = parts.hostname
    if not parts.scheme or not name:
        return host.rstrip("/")
    scheme = parts.scheme.lower()
    if ":" in name:  # an IPv6 address
        name = f"[{name}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        name = f"{name}:{port}"
    return f"{scheme}://{name}{parts.path}".rstrip("/")


def is_key_directory(name: str) -> bool:
    """Whether ``name`` is one of ours (the spool directory may hold other things)."""
    return len(name) == _KEY_DIGITS and all(c in "0123456789abcdef" for c in name)


def new_writer_id() -> str:
    """A name for this process's files: pid, start time and a random token (pids recur)."""
    return f"{os.getpid()}-{int(time.time() * 1000):x}-{secrets.token_hex(4)}"


def segment_name(writer: str, number: int) -> str:
    return f"{writer}.{number:06d}{SEGMENT_SUFFIX}"


def is_acks(name: str) -> bool:
    """Whether ``name`` is an acknowledgement file, of this version or the previous one."""
    return name.endswith(ACK_SUFFIX) or name.endswith(LEGACY_ACK_SUFFIX)


def other_version(header: bytes) -> int | None:
    """The format version of a segment another release wrote (its header is ours with
    another version byte); None for this release's segment, or a file with no header."""
    if len(header) < len(FILE_HEADER) or not header.startswith(_MAGIC):
        return None
    version = header[len(_MAGIC)]
    return None if version == FILE_HEADER[-1] else version


def encode_record(ordinal: int, message: bytes) -> bytes:
    return _HEAD.pack(MARKER, len(message), ordinal, zlib.crc32(message, ordinal)) + message


@dataclass
class Scan:
    """What a segment holds: its good records, and how many damaged stretches were skipped."""

    records: list[tuple[int, bytes]]
    damaged: int


def read_records(blob: bytes) -> Scan:
    """Every intact record of a segment's bytes; damage (torn or garbage) skipped and counted."""
    records: list[tuple[int, bytes]] = []
    damaged = 0
    size = len(blob)
    if blob.startswith(FILE_HEADER):
        position = len(FILE_HEADER)
    elif blob.count(0) == size:
        return Scan(records, 0)  # a file its writer was still preparing: empty
    else:
        damaged += 1
        position = _next_marker(blob, 0)
    while position < size:
        parsed = _record_at(blob, position)
        if parsed is not None:
            ordinal, start, end = parsed
            message = blob[start:end]
            position = end
            if _is_a_message(message):
                records.append((ordinal, message))
            else:  # intact, but no message: it would make Segment refuse its batch
                damaged += 1
            continue
        if blob.count(0, position) == size - position:
            break  # the reserved, never written tail of a file its writer left open
        damaged += 1
        position = _next_marker(blob, position + 1)
    return Scan(records, damaged)


def _is_a_message(record: bytes) -> bool:
    """Whether ``record`` is a message as the client wrote it: a JSON object."""
    if not (record.startswith(b"{") and record.endswith(b"}")):
        return False
    try:
        return isinstance(_json_loads(record), dict)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, deep nesting
        return False


def _next_marker(blob: bytes, start: int, marker: bytes = MARKER) -> int:
    found = blob.find(marker, start)
    return len(blob) if found < 0 else found


def _record_at(blob: bytes, position: int) -> tuple[int, int, int] | None:
    start = position + _HEAD.size
    if start > len(blob):
        return None
    marker, length, ordinal, crc = _HEAD.unpack_from(blob, position)
    end = start + length
    if marker != MARKER or length > MAX_RECORD_BYTES or end > len(blob):
        return None
    if zlib.crc32(blob[start:end], ordinal) != crc:
        return None
    return ordinal, start, end


def encode_acks(ordinals: list[int]) -> bytes:
    """One acknowledgement frame naming ``ordinals`` (see the module's docstring)."""
    count = len(ordinals)
    payload = struct.pack(f"<{count}I", *ordinals)
    return _ACK_HEAD.pack(ACK_MARKER, count, zlib.crc32(payload, count)) + payload


@dataclass
class AckScan:
    """What an acknowledgement file holds: the ordinals of its intact frames, and how
    many damaged stretches were skipped (what they named is delivered again)."""

    ordinals: set[int]
    damaged: int


def read_acks(path: str) -> AckScan:
    """The ordinals acknowledged in ``path``; damage (torn, zeros, garbage) skipped and counted."""
    blob = _read_if_present(path) or b""
    ordinals: set[int] = set()
    damaged = 0
    position = 0
    while position < len(blob):
        parsed = _ack_frame_at(blob, position)
        if parsed is None:
            damaged += 1
            position = _next_marker(blob, position + 1, ACK_MARKER)
            continue
        start, count = parsed
        ordinals.update(struct.unpack_from(f"<{count}I", blob, start))
        position = start + 4 * count
    return AckScan(ordinals, damaged)


def _ack_frame_at(blob: bytes, position: int) -> tuple[int, int] | None:
    """Where the ordinals of the intact frame at ``position`` start, and how many there are."""
    start = position + _ACK_HEAD.size
    if start > len(blob):
        return None
    marker, count, crc = _ACK_HEAD.unpack_from(blob, position)
    end = start + 4 * count
    if marker != ACK_MARKER or end > len(blob) or zlib.crc32(blob[start:end], count) != crc:
        return None
    return start, count


def read_legacy_acks(path: str) -> set[int] | None:
    """The ordinals of a previous version's ``.ack`` file (a torn last entry is
    ignored); None when there is no such file."""
    data = _read_if_present(path)
    if data is None:
        return None
    data = data[: len(data) - len(data) % 4]
    return set(struct.unpack(f"<{len(data) // 4}I", data))


def _read_if_present(path: str) -> bytes | None:
    try:
        with open_regular(path) as file:
            return file.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.EINVAL:  # no regular file (a FIFO): none of the spool's
            return None
        raise


def open_regular(path: str) -> BinaryIO:
    """``open(path, "rb")`` for a spool file, refusing anything but a regular file: a
    FIFO or a device named like one (a stray ``mkfifo``) would block its reader for good.

    It raises :class:`OSError` (``EINVAL``) for such a file, as for one it cannot open.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def reserve(fd: int, size: int) -> None:
    """Write ``size`` zero bytes to the file: its disk space is allocated now (a full
    disk fails here, never as a SIGBUS on a write into a memory map later), and its
    pages are in the page cache, which halves the cost of the first write to each."""
    chunk = bytes(min(size, 1 << 20))
    offset = 0
    while offset < size:
        offset += os.pwrite(fd, chunk[: size - offset], offset)


def lock_exclusive(path: str, *, create: bool = False) -> int | None:
    """Open ``path`` and take its lock without waiting; the descriptor, or None if held.

    The lock lives as long as the descriptor: the kernel releases it when the
    process dies, even by SIGKILL. After taking it, the path must still name the
    locked file: a previous holder may have removed it meanwhile.
    """
    if fcntl is None:  # pragma: no cover - Windows
        raise OSError(errno.ENOTSUP, "file locks (fcntl.flock) are not available here")
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except (FileNotFoundError, FileExistsError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
    except OSError as error:
        os.close(fd)
        if isinstance(error, FileNotFoundError) or error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def list_names(directory: str) -> list[str]:
    """The names in ``directory``; none when it is missing, not a directory or unreadable.

    A list, not a ``scandir()`` iterator: a signal handler's exception landing as the
    listing returns leaves nothing open behind.
    """
    with disk_errors_ignored():
        return os.listdir(directory)
    return []


@contextlib.contextmanager
def disk_errors_ignored() -> Iterator[None]:
    """``contextlib.suppress(OSError)``, but for a signal handler's exception (an
    ``alarm()``'s ``TimeoutError``: a time limit), which goes on to the program."""
    try:
        yield
    except OSError as error:
        if is_interruption(error):
            raise
