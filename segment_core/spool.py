"""The on-disk spool: an accepted message survives a killed process and a long outage.

With ``spool_dir`` set, every message is appended to this process's own segment
file (one ``pwritev()``: in the page cache before ``track()`` returns) and removed
once it is delivered or failed for good. Each process holds an ``flock`` on its
own lock file for its whole life; the kernel releases it when the process dies,
however it dies. A live client takes the lock of a dead writer's files and
delivers what they hold, so two adopters never both deliver the same file. What
runs out of retries stays on disk and is tried again; at-least-once, with the
``messageId`` unchanged so Segment de-duplicates a repeat. Past ``spool_max_bytes``
(in the directory of the write key and host) a message is refused, as by a full
buffer. A dead writer's files this process may not open, or of a format version it
does not know, are left alone.

Layout: ``<spool_dir>/<hash of write key and host>/<pid>-<start>-<random>.lock``
and ``....<n>.seg`` segments with their ``.acks`` files (see ``_spool_format``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from segment_core import _forks
from segment_core import _spool_format as fmt
from segment_core._clock import monotonic
from segment_core.config import Config
from segment_core.errors import is_interruption

if TYPE_CHECKING:
    from segment_core.delivery import Delivery
    from segment_core.worker import Worker

__all__ = ["Spool"]

logger = logging.getLogger("segment.core")

QUEUE_FULL = "queue_full"
#: Seconds between looks for orphaned files, re-queueing and size measurement.
TICK = 1.0
# O_NONBLOCK: a FIFO named like an acknowledgement file fails at once, never blocks.
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
#: A full disk or quota: room may come back, unlike after other failures.
_NO_ROOM = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
#: Dead writers adopted at once: each holds a descriptor (its lock) until its files are
#: delivered, which an outage puts off. The others wait on disk for their turn.
MAX_ADOPTED_WRITERS = 32
#: The segment a process creates on its first message, while the caller waits.
_FIRST_SEGMENT_BYTES = 256 * 1024
# The record format's parts, bound once for put().
_RECORD_OVERHEAD = fmt.RECORD_OVERHEAD
_MARKER = fmt.MARKER
_pack_head = fmt.pack_head
_sync_data: Any = getattr(os, "fdatasync", os.fsync)  # not on every platform
# One system call for a record's head and message, where the platform has it.
_write_at: Any = getattr(os, "pwritev", None) or (
    lambda fd, parts, offset: os.pwrite(fd, b"".join(parts), offset)
)
_crc32 = zlib.crc32
_U32 = 0xFFFFFFFF
#: A queued message's location is ``segment.first + ordinal`` (first = serial << this):
#: one small int. A segment of ours holds fewer records than that (4 MiB at most,
#: 16 bytes of framing each); a larger ordinal (an adopted file's) is encoded
#: apart, as a negative number (see ``_location``).
_ORDINAL_BITS = 20
_ORDINAL_SPAN = 1 << _ORDINAL_BITS
_MAX_SEGMENT_BYTES = 4 * 1024 * 1024
_MIN_SEGMENT_BYTES = 64 * 1024
assert _MAX_SEGMENT_BYTES // fmt.RECORD_OVERHEAD < _ORDINAL_SPAN


class Claim:
    """The lock on one writer's files: this process's own, or a dead process's adopted."""

    def __init__(self, directory: str, writer: str, lock_fd: int, *, own: bool) -> None:
        self.writer = writer
        self.lock_path = os.path.join(directory, writer + fmt.LOCK_SUFFIX)
        self.lock_fd: int | None = lock_fd
        self.own = own
        self.segments: list[Segment] = []


class Segment:
    """One segment file and what is known of its records."""

    def __init__(self, claim: Claim, path: str, *, count: int, size: int, sealed: bool) -> None:
        self.claim = claim
        self.path = path
        self.ack_path = path[: -len(fmt.SEGMENT_SUFFIX)] + fmt.ACK_SUFFIX
        #: A previous version's acknowledgements of an adopted segment, if any: removed with it.
        self.legacy_ack_path: str | None = None
        self.fd: int | None = None
        self.ack_fd: int | None = None
        self.count = count  # records to settle
        self.settled = 0
        self.pending: set[int] = set()  # on disk only: waiting for room in the buffer
        self.serial = -1  # this process's number for it, once counted as ours
        self.first = -1  # serial << _ORDINAL_BITS: its records' locations start there
        self.size = size  # bytes used
        self.allocated = size  # bytes the file takes on disk
        self.sealed = sealed

    def close(self) -> None:
        for fd in (self.fd, self.ack_fd):
            if fd is not None:
                _quietly(os.close, fd)
        self.fd = self.ack_fd = None


class Spool:
    """This process's spool files, the orphans it adopted, and the thread that tends them."""

    def __init__(self, config: Config) -> None:
        assert config.spool_dir is not None and config.write_key
        self._directory = fmt.key_directory(config.spool_dir, config.write_key, config.host)
        #: Where an earlier release kept them, if elsewhere: its dead writers are adopted too.
        self._legacy_directory = fmt.legacy_key_directory(
            config.spool_dir, config.write_key, config.host
        )
        self._max_bytes = config.spool_max_bytes
        self._fsync = config.spool_fsync
        self._fsync_always = config.spool_fsync == "always"
        # The size of new segments, and whether this process keeps its next one ready:
        # as for a lone writer until the directory is measured.
        self._share_bound(writers=1)
        self._room = config.max_queue_size
        self._worker: Worker | None = None
        #: Counts the locks made: the spool thread goes on only while the one it
        #: started with is the spool's (see _tends_for).
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._make_lock_and_wake()
        # What to log once no lock is held: a log handler may call track() (see _say).
        self._unsaid: deque[tuple[str, tuple[object, ...]]] = deque()
        self._ack_lock = threading.Lock()  # acknowledgement files; after _lock if both
        # Segments whose acknowledgements were appended since the last forced write
        # (spool_fsync="interval"; ack lock).
        self._unsynced_acks: set[Segment] = set()
        # Held while messages move from disk to the buffer (before _lock if both), and
        # by flush() across its check, which must not miss a message on the way.
        self._requeue_lock = threading.Lock()
        # Whether this thread is inside flush() (see _called_again_here).
        self._flushing = threading.local()
        self._stop = threading.Event()
        self._spare: Segment | None = None
        self._full: list[Segment] = []  # filled by callers, sealed by the spool thread
        self._first_look = threading.Event()
        self._own: Claim | None = None
        self._active: Segment | None = None
        self._adopted: list[Claim] = []
        #: Dead writers were left for later (MAX_ADOPTED_WRITERS adopted already).
        self._orphans_waiting = False
        # Queued messages by id(): their location (see _location). Plain bytes in the
        # buffer and small ints here: nothing for the garbage collector to track (a
        # tuple per message would be, and would cost a collection every 700 calls).
        # An entry lives exactly as long as its message is queued or being sent, so
        # the message is alive and its id() is not reused meanwhile.
        self._where: dict[int, int] = {}
        # Messages whose put() was stopped on their way to the buffer, by id(): kept
        # alive (their ids stay theirs) until _queue_unsure settles them.
        self._unsure: dict[int, bytes] = {}
        self._by_serial: dict[int, Segment] = {}
        self._serial = 0
        self._next_number = 0
        self._bytes = 0  # our files: own and adopted
        self._others = 0  # the rest of the key directory, as last measured
        # A file the spool thread is making: counted against the bound meanwhile, so
        # that a caller making one at the same time cannot pass it.
        self._reserving = 0
        self._broken = False
        # No room on the disk for a new file (or a record): what does not fit in the
        # current file waits in memory; the spool thread tries again every tick.
        self._out_of_room = False
        # No room under spool_max_bytes for a new file: new messages are refused. Said
        # once, and once again when the bound has room (see _say_if_room_again).
        self._past_bound = False
        self._refused_at_tick = 0
        # Dead writers whose files this process leaves alone (it may not read them, or
        # they are another release's format): said once, never tried again.
        self._left_alone: set[str] = set()
        self._closed = False
        #: Messages :meth:`close` left on disk.
        self._left_behind = 0
        self._seen_at_tick: tuple[Segment | None, int] = (None, -1)
        # Messages moved from disk into the buffer: the buffer counts each as
        # accepted again (or, for an adopted file's, for the first time).
        self._requeued = 0
        self._last_kept_log = 0.0
        self._last_read_error_log = 0.0
        self._thread: threading.Thread | None = None
        # A uWSGI master that forks its workers from the loaded app: no spool thread
        # there, ever (a worker forked while it ran could copy it, or a lock it held,
        # and hang). Its callers write and its sender delivers; a worker's starts as
        # uWSGI forks it.
        self._threadless = False
        self.counts = {
            "spilled": 0,  # written while the buffer was full: queued later
            "kept": 0,  # out of retries, kept for a later attempt
            "adopted": 0,  # taken over from the files of dead processes
            "damaged": 0,  # damaged stretches skipped in files read (records, acknowledgements)
            "refused": 0,  # no room on disk: refused past the bound, else put in the buffer
            "lost": 0,  # waiting in a file removed or damaged after they were written
            "unreadable": 0,  # dead writers whose files this process may not read
            "unknown_version": 0,  # dead writers whose files are another release's format
            "scans": 0,  # looks for orphaned files
        }

    def _make_lock_and_wake(self) -> None:
        """The lock, and what the spool thread waits on; a thread started before stops."""
        # Re-entrant: a finalizer the garbage collector runs, or a signal handler, may
        # call track() or flush() on a thread that holds it (see put()).
        self._lock = threading.RLock()
        self._lock_type = type(self._lock)
        self._held_here: Callable[[], bool] = self._lock._is_owned  # type: ignore[attr-defined]
        self._wake = _Wake()
        self._generation += 1

    def _lock_replaced(self) -> bool:
        """Whether eventlet's ``monkey_patch()`` replaced the lock since it was made
        (see :mod:`segment_core.worker`): the spool thread started before must not
        take the green one, whose waits are another OS thread's."""
        return type(self._lock) is not self._lock_type

    def _remake_lock(self) -> None:
        """After :meth:`_lock_replaced`: a green lock and wake-up (the old one's queue
        would stop the event loop while it waits), and a green spool thread, started
        by the caller."""
        self._make_lock_and_wake()
        self._thread = None

    # -- wiring --------------------------------------------------------------------

    def attach(self, worker: Worker, delivery: Delivery) -> None:
        """Feed ``worker``, hear from ``delivery``, and start looking for orphans now.

        In a uWSGI master that forks workers from the loaded app, never: each worker
        starts its own thread as uWSGI forks it (see :attr:`threadless`).
        """
        self._wire(worker, delivery)
        if _forks.forks_uwsgi_workers():
            self._threadless = True
        else:
            self.start()

    @property
    def threadless(self) -> bool:
        """Whether this is a uWSGI master's spool, which runs no thread: each worker
        uWSGI forks starts its own as it is forked (the client does)."""
        return self._threadless

    def leave_parents_files(self) -> None:
        """In a forked child, at the fork: close the parent's files here (its own
        descriptors keep its locks on them). The child's own state is made at its
        first use of the spool, by :meth:`after_fork`."""
        for claim in self._claims():
            for segment in claim.segments:
                segment.close()
            if claim.lock_fd is not None:
                _quietly(os.close, claim.lock_fd)
                claim.lock_fd = None

    def after_fork(self, worker: Worker, delivery: Delivery) -> None:
        """In a forked child, at its first use: the parent's files and locks stay the
        parent's; the child's are made now, once it could monkey-patch (gevent).

        The spool thread starts with the child's first use of the spool: a child
        that makes no call has no thread (one forked from a thread of the parent
        would otherwise never end once that thread returns). A uWSGI worker's
        starts as uWSGI forks it (see :attr:`threadless`).
        """
        self.leave_parents_files()
        self._reset()
        self._threadless = False  # a child is no master: its thread may start
        self._wire(worker, delivery)

    def _wire(self, worker: Worker, delivery: Delivery) -> None:
        self._worker = worker
        delivery.settled = self.settle
        delivery.keep = self.keep

    def start(self) -> None:
        """Start the spool thread, once."""
        with self._lock:
            if self._thread is not None:
                return
            thread = self._thread = threading.Thread(
                target=self._run, args=(self._generation,), name="segment-spool", daemon=True
            )
        # Started with the lock released: with gevent or eventlet a thread's start
        # switches to the new thread, which takes the lock.
        try:
            thread.start()
        except RuntimeError as error:  # the OS's thread limit; Python 3.12+ at exit
            self._go_without_thread(thread, error)

    def _go_without_thread(self, refused: threading.Thread, error: RuntimeError) -> None:
        """The spool thread could not start: the calls tend the disk instead.

        One look at the directory now, on the caller's thread (what dead processes
        left is then known); ``flush()`` and ``shutdown()`` move what is on disk to
        the buffer themselves, and the worker sends on the calling thread when its
        own threads cannot start either.
        """
        with self._lock:
            if self._thread is not refused:
                return
            self._thread = None
            self._threadless = True  # as a uWSGI master's: no thread is started again
        # At the program's exit this is expected (a forked worker that made no call):
        # the exit's delivery goes on here.
        log = logger.debug if "shutdown" in str(error) else logger.warning
        log("segment: the spool thread could not start (%s); the calls tend the disk", error)
        try:
            self._tend()
        except Exception:
            logger.exception("error while tending the Segment spool")
        finally:
            self._first_look.set()

    # -- the hot path ---------------------------------------------------------------

    def put(self, data: bytes) -> str | None:
        """Write ``data`` to disk, then queue it; ``None`` or the reason it was refused.

        An exception raised into the caller meanwhile (a job's time limit, from a
        signal handler) goes on to the caller. The message is then accepted or not,
        never half: a record it stopped is taken back; one written but stopped on
        its way to the buffer is looked after by :meth:`_queue_unsure`.
        """
        worker = self._worker
        assert worker is not None
        if type(self._lock) is not self._lock_type:  # (_lock_replaced(), inlined)
            self._remake_lock()
        if self._thread is None and not self._threadless:  # a forked child's first call
            self.start()
        if self._broken:  # (a forked child's was reset before its first call)
            self._where.pop(id(data), None)  # (none, unless a sender thread died)
            return worker.put(data)
        if self._held_here():
            # Called again by this thread in the middle of a step of the spool's (a
            # finalizer the garbage collector ran, a signal handler): never into a file
            # being written. The buffer takes it, as when the disk is full.
            self.counts["refused"] += 1
            return worker.put(data)
        length = len(data)
        key = id(data)
        try:
            # "with", not acquire() then try: an exception raised between those two
            # would leave the lock held for good.
            with self._lock:
                segment = self._active  # None once closed: close() seals it
                if segment is None or segment.size + _RECORD_OVERHEAD + length > segment.allocated:
                    if self._closed:  # racing a shutdown: the buffer refuses it and says why
                        return worker.put(data)
                    try:
                        segment = self._roll(segment)
                    except OSError as error:
                        if is_interruption(error):
                            raise
                        if error.errno in _NO_ROOM:  # the spool thread tries again
                            self._run_out_of_room(error)
                            self.counts["refused"] += 1
                        else:
                            self._break(error)  # the disk failed: the caller goes on
                        return worker.put(data)
                    if segment is None:
                        if self._out_of_room:  # a full disk: the buffer takes it for now
                            self.counts["refused"] += 1
                            return worker.put(data)
                        return self._refuse_past_bound()
                ordinal = segment.count
                offset = segment.size
                end = offset + _RECORD_OVERHEAD + length
                fd = segment.fd
                assert fd is not None
                try:
                    # One write into the page cache, not a copy into a mapping of the
                    # file: a file cut short behind our back (": > file") then costs
                    # this record, where a write into the mapping would kill the
                    # process with SIGBUS.
                    head = _pack_head(_MARKER, length, ordinal, _crc32(data, ordinal))
                    if _write_at(fd, (head, data), offset) != end - offset:
                        raise OSError(f"a short write to {segment.path}")
                    if self._fsync_always:
                        _sync_data(fd)
                except BaseException as error:
                    if isinstance(error, OSError) and error.errno in _NO_ROOM:
                        # Past what the file reserved (a copy-on-write filesystem): no
                        # more records go to it, and the spool thread tries again.
                        self._take_back(fd, offset, end)
                        self._retire(segment)
                        self._run_out_of_room(error)
                        self.counts["refused"] += 1
                        return worker.put(data)
                    if isinstance(error, OSError) and not is_interruption(error):
                        self._break(error)  # the disk failed: the caller goes on
                        return worker.put(data)
                    self._take_back(fd, offset, end)
                    raise
                segment.size = end
                segment.count = ordinal + 1
                self._where[key] = segment.first + ordinal
            refused = worker.put(data)
            if refused is None:
                return None
            with self._lock:
                if refused == QUEUE_FULL:  # safe on disk: queued when the buffer has room
                    # No call before the last line: Python runs a signal handler (and
                    # raises what it raises) only at a call or a loop's jump back, so
                    # none can leave this half done.
                    self.counts["spilled"] += 1
                    del self._where[key]
                    segment.pending.add(ordinal)
                    return None
                del self._where[key]
                self._acknowledge({segment: [ordinal]})  # never queued: shut down
            return refused
        except BaseException:
            if key in self._where:  # on disk, and perhaps in the buffer: see _queue_unsure
                self._unsure[key] = data
            raise
        finally:
            if self._unsaid:  # (logged with the lock released: see _say_later)
                self._say()

    def _refuse_past_bound(self) -> str:
        """No room under ``spool_max_bytes`` for a new file: the message is refused as by
        a full buffer, and that is said once until there is room again (lock held)."""
        self.counts["refused"] += 1
        if not self._past_bound:
            self._past_bound = True
            self._say_later(
                "Segment spool at %s is full (spool_max_bytes=%d); new messages are refused "
                "until delivered ones make room",
                self._directory,
                self._max_bytes,
            )
        return QUEUE_FULL

    def _take_back(self, fd: int, offset: int, end: int) -> None:
        """Zero what a write stopped halfway may have left: the next record goes there."""
        try:
            os.pwrite(fd, bytes(end - offset), offset)
        except OSError as error:
            self._break(error)  # no record follows one that may be left there

    def _queue_unsure(self, keys: list[int]) -> None:
        """Queue from disk each message of ``keys`` that never reached the buffer.

        The caller makes sure that the buffer has settled every message it held when
        ``keys`` were read. A :meth:`put` stopped after its record was written, on
        the way to the buffer, leaves it unknown whether the buffer took the
        message; once the buffer has settled what it held, one still located here
        never got there. It waits on disk as a spilled one does, and is accepted.
        """
        with self._lock:
            for key in keys:
                data = self._unsure.pop(key, None)
                found = self._locate(data) if data is not None else None
                if found is not None:
                    found[0].pending.add(found[1])
                    self.counts["spilled"] += 1

    def _roll(self, segment: Segment | None) -> Segment | None:
        """Retire the full ``segment`` and make the next one active; None when full (lock held).

        The spool thread seals it: writing out and truncating 4 MiB takes up to a
        millisecond, which a caller of ``track()`` never waits for.
        """
        if segment is not None:
            self._retire(segment)
        return self._next_segment()

    def _retire(self, segment: Segment) -> None:
        """No more records go to the active ``segment``: the spool thread seals it (lock held)."""
        self._active = None
        self._full.append(segment)
        self._wake.set()

    # -- hooks called by the delivery ------------------------------------------------

    def settle(self, batch: Iterable[bytes]) -> None:
        """``batch`` was delivered or failed for good: acknowledge it, drop finished files.

        Called by a sender thread. The callers' lock is taken only for a moment: a
        caller of ``track()`` never waits for this thread's system calls (and then
        for the GIL it keeps).
        """
        # By segment serial: a batch's messages are mostly in one segment, in order.
        # (dict.pop is atomic: no lock needed.)
        by_serial: dict[int, list[int]] = {}
        pop = self._where.pop
        low = high = 0  # the locations of the segment the last message was in
        ordinals: list[int] = []
        for item in batch:
            where = pop(id(item), None)
            if where is None:
                continue
            if low <= where < high:
                ordinals.append(where - low)
                continue
            serial, ordinal = _place(where)
            ordinals = by_serial.setdefault(serial, [])
            ordinals.append(ordinal)
            low = serial << _ORDINAL_BITS if where >= 0 else 0
            high = low + _ORDINAL_SPAN if where >= 0 else 0
        by_segment: dict[Segment, list[int]] = {}
        for serial, ordinals in by_serial.items():
            segment = self._by_serial.get(serial)
            if segment is not None:
                by_segment[segment] = ordinals
        if not by_segment:
            return
        with self._ack_lock:
            for segment, ordinals in by_segment.items():
                self._write_acks(segment, ordinals)
        finished: list[str | Claim] = []
        with self._lock:
            for segment, ordinals in by_segment.items():
                if segment.claim.lock_fd is not None:
                    segment.settled += len(ordinals)
                    self._delete_if_done(segment, finished)
        if finished:  # unlinked with the lock released: a caller never waits for it
            self._remove(finished)
        if self._unsaid:
            self._say()

    def _locate(self, item: bytes) -> tuple[Segment, int] | None:
        """Where a queued message is on disk, forgetting it: it left the buffer (lock held)."""
        where = self._where.pop(id(item), None)
        if where is None:
            return None
        serial, ordinal = _place(where)
        segment = self._by_serial.get(serial)
        return None if segment is None else (segment, ordinal)

    def _acknowledge(self, by_segment: dict[Segment, list[int]]) -> None:
        """Record settled messages (lock held)."""
        with self._ack_lock:
            for segment, ordinals in by_segment.items():
                self._write_acks(segment, ordinals)
        for segment, ordinals in by_segment.items():
            if segment.claim.lock_fd is not None:
                segment.settled += len(ordinals)
                self._delete_if_done(segment)

    def _write_acks(self, segment: Segment, ordinals: list[int]) -> None:
        """Append ``ordinals`` to the segment's acknowledgement file (ack lock held)."""
        if segment.claim.lock_fd is None:
            return  # closed, or the parent's: no longer ours to touch
        try:
            if segment.ack_fd is None:
                segment.ack_fd = os.open(segment.ack_path, _APPEND, 0o600)
            acks = fmt.encode_acks(ordinals)
            written = os.write(segment.ack_fd, acks)
            if written != len(acks):  # the disk filled up: no torn entry before the next
                os.ftruncate(segment.ack_fd, os.fstat(segment.ack_fd).st_size - written)
                raise OSError(errno.ENOSPC, "no room for the acknowledgements", segment.ack_path)
            if self._fsync_always:
                _sync_data(segment.ack_fd)
            elif self._fsync == "interval":
                self._unsynced_acks.add(segment)  # forced to disk by the spool thread
        except OSError as error:
            if is_interruption(error):  # (a signal handler's TimeoutError: not the disk)
                raise
            if error.errno in _NO_ROOM:
                # Sent again by a later adopter if this process dies before the file
                # goes (Segment de-duplicates it): no reason to stop the spool.
                self._run_out_of_room(error)
            else:
                self._break(error)

    def keep(self, batch: list[bytes]) -> list[bytes]:
        """Out of retries: keep what of ``batch`` is on disk for a later attempt.

        Returns the rest, which was never on disk (the spool was full or unusable
        when it was accepted): that fails as it would without a spool. A batch
        mixes both after such a spell, and what is on disk must not go with it.
        """
        memory_only: list[bytes] = []
        with self._lock:
            for item in batch:
                found = self._locate(item)
                if found is None:
                    memory_only.append(item)
                else:
                    found[0].pending.add(found[1])
            kept = len(batch) - len(memory_only)
            self.counts["kept"] += kept
        now = monotonic()
        if kept and now - self._last_kept_log > 30.0:
            self._last_kept_log = now
            logger.warning(
                "Segment: %d message(s) of a batch not delivered now (out of retries or of "
                "time) kept in the spool and tried again later",
                kept,
            )
        return memory_only

    # -- flush, close, stats ---------------------------------------------------------

    @property
    def accepted(self) -> int:
        """Messages :meth:`put` accepted: queued at once, or spilled to disk for later.

        Each counts once, however often it goes back to the buffer from the disk;
        what dead processes left is counted as ``adopted``, not here.
        """
        worker = self._worker
        assert worker is not None
        return worker.accepted - self._requeued + self.counts["spilled"]

    @property
    def in_buffer(self) -> int:
        """Messages of the sender's buffer (or in flight) that are on disk too."""
        return len(self._where)

    @property
    def pending(self) -> int:
        """Messages on disk waiting for room in the buffer or for another attempt."""
        with self._lock:  # the spool thread may remove a segment from a list meanwhile
            return sum(len(s.pending) for claim in self._claims() for s in claim.segments)

    def flush(self, timeout: float) -> bool:
        """Queue what waits on disk and deliver everything, within ``timeout`` seconds.

        Called again by a thread inside :meth:`flush` or a step of the spool's (a
        signal handler's call, a finalizer's the garbage collector runs), it waits for
        nothing: what it would wait for is that thread. It asks for delivery and
        returns whether everything accepted is delivered or definitively failed.
        """
        worker = self._worker
        assert worker is not None
        if self._called_again_here():
            return self._ask_for_delivery(worker)
        flushing = self._flushing
        flushing.here = True
        try:
            return self._flush(worker, timeout)
        finally:
            flushing.here = False

    def _called_again_here(self) -> bool:
        """Whether this thread is inside :meth:`flush` or holds the spool's lock."""
        return getattr(self._flushing, "here", False) or self._held_here()

    def _ask_for_delivery(self, worker: Worker) -> bool:
        """:meth:`flush` called again inside the spool: the senders send everything now;
        whether all accepted is already delivered or definitively failed.

        Not while messages may be on their way from disk to the buffer (the flush this
        call interrupted, or the spool thread, holds the requeue lock), nor before the
        first look at the directory (what dead processes left is not known yet).
        """
        if not self._requeue_lock.acquire(blocking=False):
            worker.flush(0.0)  # (asks the senders to send everything now)
            return False
        try:
            delivered = worker.flush(0.0)
            looked = self._threadless or self._first_look.is_set()
            return (
                delivered
                and looked
                and not self._unsure
                and not self.pending
                and not self._orphans_waiting
            )
        finally:
            self._requeue_lock.release()

    def _flush(self, worker: Worker, timeout: float) -> bool:
        if self._lock_replaced():
            self._remake_lock()
        if self._thread is None and not self._threadless:
            self.start()  # a forked child's first call: look for orphans too
        if worker.on_sender_thread():  # (in a hook) the sender is this thread: no wait
            timeout = 0.0
        deadline = monotonic() + timeout
        # What dead processes left counts too: wait for the first look at the directory
        # (not done by the deadline: what it would find is not delivered either). A
        # uWSGI master takes none: its workers do.
        if not self._threadless and not self._first_look.wait(timeout):
            return False
        pause = threading.Event()
        while True:
            # No message moves from disk to the buffer but this call's own: one moved
            # after the buffer's flush counted what to wait for, and off the disk when
            # pending is read, would be missed by both. One that runs out of retries
            # meanwhile is back on disk before the buffer counts it done.
            if not self._requeue_lock.acquire(timeout=max(0.0, deadline - monotonic())):
                return False  # another flush() holds it past this one's deadline
            kept = self.counts["kept"]
            unsure = list(self._unsure)
            try:
                moved = self._requeue()
                done = worker.flush(max(0.0, deadline - monotonic()))
                if done and unsure:
                    self._queue_unsure(unsure)  # (then pending: the loop goes on)
                # Dead writers waiting for their turn (MAX_ADOPTED_WRITERS) count too.
                if done and not self.pending and not self._orphans_waiting:
                    return True
            finally:
                self._requeue_lock.release()
            deadline = worker.cut(deadline)  # a shutdown elsewhere ends sooner (SIGTERM)
            remaining = deadline - monotonic()
            if remaining <= 0:
                return False
            if self.counts["kept"] != kept:
                # Out of retries again: tried again at the spool's own pace, not at
                # once (a server in trouble would get every batch back to back).
                pause.wait(min(TICK, remaining))
            elif not moved:
                pause.wait(min(0.1, remaining))

    def close(self, timeout: float = 5.0) -> bool:
        """Stop tending the spool; what is undelivered stays on disk for another process.

        Returns True when nothing was left behind; waits at most ``timeout`` seconds
        for the spool thread (it may be creating a file, or reading a dead one's).
        """
        self._stop.set()
        self._wake.set()
        thread, caller = self._thread, threading.current_thread()
        if thread is not None and thread.ident is not None and thread is not caller:  # started
            thread.join(max(0.0, timeout))
        with self._lock:
            if self._closed:  # closed before: what it left then is still left
                return not self._left_behind
            self._closed = True
            self._spare = None
            self._full = []  # (unsealed: sealed below with the rest)
            for segment in list(self._own.segments if self._own is not None else ()):
                if not segment.sealed:
                    self._seal(segment)
            for claim in self._claims():
                for segment in list(claim.segments):
                    self._delete_if_done(segment)
            left = 0
            for claim in self._claims():
                left += sum(s.count - s.settled for s in claim.segments)
                if not claim.segments:
                    _quietly(os.unlink, claim.lock_path)
                self._release(claim)
            self._left_behind = left
        if left:
            logger.warning(
                "%d Segment message(s) stay in the spool at %s; the next client with the "
                "same write key and host delivers them",
                left,
                self._directory,
            )
        return not left

    def snapshot(self) -> dict[str, Any]:
        return {
            "directory": self._directory,
            "bytes": self._bytes,
            "pending": self.pending,
            "in_memory_only": self._broken,
            "disk_full": self._out_of_room,
            **self.counts,
        }

    # -- internals (``_lock`` held where noted) --------------------------------------

    def _claims(self) -> list[Claim]:
        return [*self._adopted, *([self._own] if self._own is not None else [])]

    def _next_segment(self) -> Segment | None:
        """The segment to append to now; None when the spool is full (lock held)."""
        segment = self._spare
        if segment is None:
            if not self._has_room():
                return None
            own = self._own
            if self._out_of_room and own is not None:
                return None  # the spool thread makes the next file once there is room
            if own is None:
                own = self._own = self._claim_own()
            # Small and written out now (a millisecond or so): the spool thread
            # prepares the next, full-size one in the background.
            size = min(self._segment_bytes, _FIRST_SEGMENT_BYTES)
            size = _fitting(size, _free_bytes(self._directory))
            segment = self._create_segment(own, self._take_number(), size, publish=True)
            if segment is None:
                return None
        self._spare = None
        self._active = segment
        self._wake.set()  # the spool thread prepares the next one
        return segment

    def _has_room(self) -> bool:
        used = self._bytes + self._others + self._reserving
        return used + self._segment_bytes <= self._max_bytes

    def _share_bound(self, writers: int) -> None:
        """Size new segments for ``writers`` processes writing to the key directory.

        Each writer holds its current file, its next one (reserved at full size), and
        the file it filled last until that is delivered: all of them together take at
        most half of ``spool_max_bytes`` (a file 64 KiB to 4 MiB, and a sixteenth of
        the bound at most), so many idle or busy processes never fill the bound with
        files. When even 64 KiB files would take more, no writer keeps a next file
        ready: each makes a file as it needs one.
        """
        share = self._max_bytes // (6 * max(1, writers))
        largest = min(_MAX_SEGMENT_BYTES, self._max_bytes // 16, share)
        self._segment_bytes = max(_MIN_SEGMENT_BYTES, largest)
        self._keeps_spare = share >= _MIN_SEGMENT_BYTES

    def _take_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    def _create_segment(
        self, own: Claim, number: int, size: int, *, publish: bool = False
    ) -> Segment | None:
        """A new, empty segment file of ``size`` bytes, open for appending; None when the
        key directory has no room for it (no lock needed, unless ``publish``).

        With ``publish`` (lock held) it is counted as ours and made the spare before it
        is returned. Interrupted anywhere before that (a time limit's exception, on a
        caller's thread), it leaves no file and no descriptor behind.
        """
        path = os.path.join(self._directory, fmt.segment_name(own.writer, number))
        fd = -1
        segment: Segment | None = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.ftruncate(fd, size)  # its full size at once, for every process that measures
            if not self._fits(size):
                closing, fd = fd, -1
                os.close(closing)
                _quietly(os.unlink, path)
                return None
            # Blocks reserved now: a full disk fails here, not at a write later.
            fmt.reserve(fd, size)
            os.pwrite(fd, fmt.FILE_HEADER, 0)
            if self._fsync != "never":  # the file's name must survive a power loss too
                self._sync_directory()
            segment = Segment(own, path, count=0, size=len(fmt.FILE_HEADER), sealed=False)
            segment.fd, segment.allocated = fd, size
            if publish:
                self._publish(segment)
            return segment
        except BaseException as error:
            if segment is not None and any(s is segment for s in own.segments):
                raise  # counted as ours: closing the spool settles it
            if fd >= 0:
                _quietly(os.close, fd)
            elif isinstance(error, OSError) and not is_interruption(error):
                raise  # os.open() failed: no file made
            else:
                _close_lost_descriptor(path)  # perhaps stopped as os.open() returned
            _quietly(os.unlink, path)
            raise

    def _fits(self, size: int) -> bool:
        """Whether the key directory, measured now, is within the bound with a new file
        of ours of ``size`` bytes in it (made at that size, not yet counted as ours).

        Processes that make files at the same moment each make theirs before they
        measure: the last to measure counts all of them, so they never pass the bound
        together (some give their file up, and try again a tick later). What is
        measured is kept (a plain int: the spool thread's next measure corrects a
        race), so that a caller finding no room does not measure again at once.
        """
        total, writers = self._directory_usage()
        self._others = max(0, total - size - self._bytes)
        self._share_bound(writers)
        return total <= self._max_bytes

    def _sync_directory(self) -> None:
        fd = os.open(self._directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _publish(self, segment: Segment) -> None:
        """Count ``segment`` as one of ours and make it the spare (lock held).

        No call comes before the last line, so a signal handler's exception lands before
        all of it or after it (whether it did is ``segment in segment.claim.segments``).
        """
        segment.serial = serial = self._serial
        segment.first = serial << _ORDINAL_BITS
        self._serial = serial + 1
        self._by_serial[serial] = segment
        self._bytes += segment.allocated
        self._spare = segment
        segment.claim.segments.append(segment)

    def _number(self, segment: Segment) -> None:
        segment.serial = self._serial
        segment.first = self._serial << _ORDINAL_BITS
        self._serial += 1
        self._by_serial[segment.serial] = segment

    def _prepare_spare(self) -> None:
        """Create the next segment ahead of need (spool thread): reserving the blocks of a
        file takes milliseconds, which stay off the callers of ``track()`` (and off
        the lock they take)."""
        with self._lock:
            own = self._own
            # A full disk that passed: the next file is made here even when each
            # caller makes its own (no spare kept), as no caller makes one then.
            if self._spare is not None or own is None:
                return
            if not (self._keeps_spare or self._out_of_room):
                return
            if self._closed or self._broken or not self._has_room():
                return
            number = self._take_number()
            size = self._reserving = self._segment_bytes
        try:
            free = _free_bytes(self._directory)
            size = _fitting(size, free)
            if self._out_of_room and free < size:
                raise OSError(errno.ENOSPC, "not enough free space yet")
            segment = self._create_segment(own, number, size)
        except OSError as error:
            with self._lock:
                self._reserving = 0
                if error.errno in _NO_ROOM:  # perhaps for a moment: tried again next tick
                    self._run_out_of_room(error)
                else:
                    self._break(error)
            return
        except BaseException:
            with self._lock:
                self._reserving = 0
            raise
        with self._lock:
            self._reserving = 0
            if segment is None:  # no room for it: the directory is full
                return
            if self._closed or self._spare is not None or own is not self._own:
                segment.close()  # shut down (or forked) meanwhile
                _quietly(os.unlink, segment.path)
                return
            self._publish(segment)
            if self._out_of_room:
                self._out_of_room = False
                self._say_later(
                    "Segment spool at %s has room on the disk again; new messages are "
                    "written to it",
                    self._directory,
                )

    def _claim_own(self) -> Claim:
        os.makedirs(self._directory, mode=0o700, exist_ok=True)
        writer = fmt.new_writer_id()
        temporary = os.path.join(self._directory, writer + fmt.TEMP_SUFFIX)
        fd = fmt.lock_exclusive(temporary, create=True)
        if fd is None:
            raise OSError(f"could not lock {temporary}")
        # Renamed once locked: an adopter never sees an unlocked lock file of a live writer.
        claim = Claim(self._directory, writer, fd, own=True)
        try:
            os.rename(temporary, claim.lock_path)
        except BaseException:
            os.close(fd)
            _quietly(os.unlink, temporary)
            raise
        return claim

    def _seal(self, segment: Segment) -> None:
        """No more appends to ``segment``; its unused reserved tail is given back (lock held)."""
        self._close_file(segment.fd, segment.size)
        segment.fd = None
        self._sealed(segment)

    def _close_file(self, fd: int | None, size: int) -> None:
        """Write out (per the fsync policy), truncate to ``size`` and close a segment's file."""
        if fd is not None:
            if self._fsync != "never":
                _quietly(_sync_data, fd)
            _quietly(os.ftruncate, fd, size)
            _quietly(os.close, fd)

    def _sealed(self, segment: Segment, later: list[str | Claim] | None = None) -> None:
        """Count ``segment`` as sealed, its file cut to what it holds (lock held)."""
        self._bytes -= segment.allocated - segment.size
        segment.allocated = segment.size
        segment.sealed = True
        if segment is self._active:
            self._active = None
        self._delete_if_done(segment, later)

    def _seal_full(self) -> None:
        """Seal the segments callers filled (spool thread): the system calls without the lock."""
        with self._lock:
            full, self._full = self._full, []
            files = [(segment.fd, segment.size) for segment in full]
            for segment in full:
                segment.fd = None  # nobody appends to a full segment
        if not full:
            return
        for fd, size in files:
            self._close_file(fd, size)
        finished: list[str | Claim] = []
        with self._lock:
            for segment in full:
                if not segment.sealed:  # (close() may have sealed it meanwhile)
                    self._sealed(segment, finished)
        self._remove(finished)

    def _delete_if_done(self, segment: Segment, later: list[str | Claim] | None = None) -> None:
        """Remove ``segment`` once every record is settled (lock held).

        With ``later``, what is to be removed is added to it instead, for the caller
        to pass to :meth:`_remove` once the lock is released (callers of ``track()``
        then never wait for those system calls).
        """
        if not segment.sealed or segment.settled < segment.count or segment.pending:
            return
        with self._ack_lock:  # a sender may be appending to its acknowledgements
            segment.close()
        self._by_serial.pop(segment.serial, None)
        self._bytes -= segment.allocated
        claim = segment.claim
        if segment in claim.segments:
            claim.segments.remove(segment)
        steps: list[str | Claim] = [segment.path, segment.ack_path]
        if segment.legacy_ack_path is not None:
            steps.append(segment.legacy_ack_path)
        if not claim.own and not claim.segments and claim in self._adopted:
            # Files first, then the lock file, then the lock: a late adopter finds
            # nothing to take.
            self._adopted.remove(claim)
            steps += [claim.lock_path, claim]
            if self._orphans_waiting:  # another dead writer's turn: now, not next tick
                self._wake.set()
        if later is None:
            self._remove(steps)
        else:
            later.extend(steps)

    def _remove(self, steps: list[str | Claim]) -> None:
        """Unlink each path and release each emptied adopted claim, in order."""
        for step in steps:
            if isinstance(step, Claim):
                self._release(step)
            else:
                _quietly(os.unlink, step)

    def _release(self, claim: Claim) -> None:
        with self._ack_lock:
            for segment in claim.segments:
                segment.close()
        if claim.lock_fd is not None:
            _quietly(os.close, claim.lock_fd)
            claim.lock_fd = None

    def _keep_own_lock(self) -> None:
        """Keep this process's lock file fresh, and make sure it is still there.

        Touched at each pass, it never looks stale to a cleaner of old files (a
        ``/tmp`` cleaner). If it was removed all the same, another process may take
        this one for dead and adopt its files: the spool stops being written to.
        """
        own = self._own
        if own is None or own.lock_fd is None or self._broken:
            return
        try:
            os.utime(own.lock_fd)
            if os.stat(own.lock_path).st_ino == os.fstat(own.lock_fd).st_ino:
                return
            problem = "its lock file was replaced"
        except FileNotFoundError:
            problem = "its lock file was removed"
        except OSError as error:
            problem = str(error)
        self._break(OSError(f"{own.lock_path}: {problem}"))

    def _keep_files(self) -> None:
        """Keep the files this process holds fresh, as its lock file, and make again
        an open segment another program removed all the same (spool thread).

        The spare, idle for days, would otherwise be a cleaner's prey; records written
        to a removed file would be lost with the process.
        """
        with self._lock:
            if self._broken or self._closed:
                return
            files = [s for claim in self._claims() for s in claim.segments]
            # Descriptors of our own: a caller may close the segment's own meanwhile.
            opened = [(s, os.dup(s.fd)) for s in files if s.fd is not None]
        for segment in files:
            for path in (segment.path, segment.ack_path, segment.legacy_ack_path):
                if path is not None:
                    with contextlib.suppress(OSError):  # (an ack file is made on the first one)
                        os.utime(path)
        for segment, fd in opened:
            try:
                if not _names(segment.path, fd):
                    self._restore(segment, fd)
            except OSError as error:
                if is_interruption(error):
                    raise
                self._break(
                    OSError(f"{segment.path} was removed and cannot be made again: {error}")
                )
            finally:
                os.close(fd)

    def _restore(self, segment: Segment, removed: int) -> None:
        """Make ``segment``'s file again from ``removed``, a descriptor of the removed one.

        What it holds is copied without the lock, then what callers appended meanwhile
        with it held, and the new file takes the removed one's place: each record keeps
        its offset and ordinal, each queued message its location.
        """
        fd = os.open(segment.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fmt.reserve(fd, segment.allocated)
            copied = _copy(removed, fd, 0, segment.size)
            if self._fsync != "never":
                _sync_data(fd)
                self._sync_directory()
            with self._lock:
                restored = segment.fd is not None  # (else close() sealed it meanwhile)
                if restored:
                    _copy(removed, fd, copied, segment.size)
                    segment.fd, fd = fd, segment.fd
        except BaseException:
            os.close(fd)
            _quietly(os.unlink, segment.path)
            raise
        os.close(fd)  # the removed file's: nothing writes to it any more
        if not restored:
            _quietly(os.unlink, segment.path)
            return
        logger.warning(
            "Segment spool file %s was removed by another program; made again from what "
            "this process holds open",
            segment.path,
        )

    def _read(self, segment: Segment, size: int) -> bytes | None:
        """The first ``size`` bytes of ``segment``'s file; None once it is gone for good."""
        try:
            with fmt.open_regular(segment.path) as file:
                return file.read(size)
        except FileNotFoundError:
            pass
        with self._lock:  # removed, but still open for writing: read it there
            fd = None if segment.fd is None else os.dup(segment.fd)
        if fd is None:
            return None
        try:
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def _lose(self, segment: Segment, ordinals: set[int], why: str) -> None:
        """Messages waiting in ``segment`` that cannot be read any more: failed, and said
        so (``why``: what happened to the file)."""
        with self._lock:
            lost = len(ordinals & segment.pending)
            segment.pending -= ordinals
            segment.settled += lost
            self.counts["lost"] += lost
            self._delete_if_done(segment)
        if lost:
            logger.error(
                "Segment spool file %s %s: %d message(s) waiting in it are lost",
                segment.path,
                why,
                lost,
            )

    def _cannot_read(self, segment: Segment, error: OSError) -> None:
        """A file that cannot be read now: said at most every 30 s, its messages kept."""
        now = monotonic()
        if now - self._last_read_error_log > 30.0:
            self._last_read_error_log = now
            logger.warning(
                "cannot read the Segment spool file %s (%s); its messages wait on disk "
                "and are tried again",
                segment.path,
                error,
            )

    def _run_out_of_room(self, error: OSError) -> None:
        """No room on the disk for now: said once, until there is again (a lock may be
        held: said by :meth:`_say`)."""
        if not self._out_of_room:
            self._out_of_room = True
            self._say_later(
                "no room on the disk for the Segment spool at %s (%s); messages that do not "
                "fit in its current file are kept in memory until there is",
                self._directory,
                error,
            )

    def _break(self, error: Exception) -> None:
        """The spool is unusable: said once (a lock may be held: said by :meth:`_say`)."""
        if not self._broken:
            self._broken = True
            self._say_later(
                "Segment spool at %s is unusable (%s); new messages are kept in memory only",
                self._directory,
                error,
            )

    def _say_later(self, message: str, *args: object) -> None:
        """A WARNING for :meth:`_say`: never logged with a lock of the spool held, where
        an app's log handler that calls ``track()`` would wait for it for ever."""
        self._unsaid.append((message, args))

    def _say(self) -> None:
        """Log what :meth:`_say_later` kept (no lock of the spool held)."""
        while True:
            try:
                message, args = self._unsaid.popleft()
            except IndexError:
                return
            logger.warning(message, *args)

    # -- the spool thread -------------------------------------------------------------

    def _run(self, generation: int) -> None:
        failed = False
        wake = self._wake  # (a thread started after it was made again has its own)
        while self._tends_for(generation):
            try:
                self._tend()
            except Exception:
                # Once: a lasting problem must not fill the log every second.
                if not failed:
                    logger.exception("error while tending the Segment spool")
                failed = True
            finally:
                self._say()
            self._first_look.set()
            wake.wait(TICK)
            wake.clear()

    def _tends_for(self, generation: int) -> bool:
        """Whether the spool thread started with the lock of ``generation`` goes on."""
        return (
            not self._stop.is_set() and generation == self._generation and not self._lock_replaced()
        )

    def _tend(self) -> None:
        if self._pid != os.getpid():
            return
        if self._fsync == "interval":
            # First: the acknowledgements appended since the last tick reach the disk
            # whatever this tick does with their file (a quiet one is sealed below).
            self._sync_acks()
        self._keep_own_lock()
        self._keep_files()  # (before sealing: a removed file is made again while it is open)
        self._seal_full()
        self._prepare_spare()
        self._adopt_orphans()
        self.counts["scans"] += 1
        self._measure()
        worker = self._worker
        if self._unsure and worker is not None:
            keys = list(self._unsure)
            if not worker.pending:  # nothing queued nor being sent: none of them is
                self._queue_unsure(keys)
        if self._requeue_lock.acquire(blocking=False):  # else a flush() is moving them
            try:
                self._requeue()
            finally:
                self._requeue_lock.release()
        synced: int | None = None
        with self._lock:
            active = self._active
            seen = (active, active.count if active is not None else -1)
            idle = seen == self._seen_at_tick
            self._seen_at_tick = seen
            if active is not None and active.fd is not None:
                if self._fsync == "interval":
                    # Forced to disk outside the lock, which every track() takes:
                    # on a busy disk this takes tens of milliseconds.
                    with contextlib.suppress(OSError):
                        synced = os.dup(active.fd)
                if idle and active.settled >= active.count and not active.pending:
                    self._seal(active)  # quiet and all delivered: the file goes
        if synced is not None:
            _quietly(_sync_data, synced)
            _quietly(os.close, synced)

    def _sync_acks(self) -> None:
        """Force to disk the acknowledgements appended since the last tick (spool thread):
        on descriptors of our own, outside the ack lock, which senders take."""
        with self._ack_lock:
            segments, self._unsynced_acks = self._unsynced_acks, set()
            opened = []
            for segment in segments:
                if segment.ack_fd is not None:
                    with contextlib.suppress(OSError):
                        opened.append(os.dup(segment.ack_fd))
        for fd in opened:
            _quietly(_sync_data, fd)
            _quietly(os.close, fd)

    def _adopt_orphans(self) -> None:
        """Take every writer whose lock is free (its process is gone) and queue its
        files: in this write key and host's directory, and in the one an earlier
        release kept them in (if another)."""
        waiting = self._adopt_orphans_in(self._directory)
        legacy = self._legacy_directory
        if not waiting and legacy is not None and not self._closed:
            waiting = self._adopt_orphans_in(legacy)
        # Left True until this look ends: a flush() meanwhile waits for those writers.
        self._orphans_waiting = waiting

    def _adopt_orphans_in(self, directory: str) -> bool:
        """:meth:`_adopt_orphans` in ``directory``; whether writers are left waiting
        (as many as may be adopted at once are)."""
        locked: set[str] = set()
        unlocked: set[str] = set()
        for name in fmt.list_names(directory):
            writer, _, suffix = name.partition(".")
            if suffix == fmt.LOCK_SUFFIX[1:]:
                locked.add(writer)
            elif name.endswith(fmt.SEGMENT_SUFFIX) or fmt.is_acks(name):
                unlocked.add(writer)
            elif suffix == fmt.TEMP_SUFFIX[1:]:
                self._remove_stale_temporary(os.path.join(directory, name))
        held = {claim.writer for claim in self._claims()}
        for writer in sorted((locked | unlocked) - held - self._left_alone):
            if self._closed:
                break
            if len(self._adopted) >= MAX_ADOPTED_WRITERS:  # the next, once one is done
                return True
            path = os.path.join(directory, writer + fmt.LOCK_SUFFIX)
            made = writer not in locked  # (its lock file is made here, and taken)
            try:
                fd = fmt.lock_exclusive(path, create=made)
            except PermissionError:
                self._leave_unreadable(writer, path)
                continue
            except OSError as error:
                if is_interruption(error):
                    raise
                continue
            if fd is not None:
                self._adopt(Claim(directory, writer, fd, own=False), directory, made_lock=made)
        return False

    def _adopt(self, claim: Claim, directory: str, *, made_lock: bool) -> None:
        prefix = claim.writer + "."
        names = {name for name in fmt.list_names(directory) if name.startswith(prefix)}
        paths = [
            os.path.join(directory, name)
            for name in sorted(names)
            if name.endswith(fmt.SEGMENT_SUFFIX)
        ]
        if not self._can_adopt(claim.writer, paths):
            if made_lock:
                _quietly(os.unlink, claim.lock_path)
            self._release(claim)
            return
        self._remove_stray_acks(names, directory)
        segments = []
        for path in paths:
            segment = self._read_orphan(claim, path, last=path == paths[-1])
            if segment is not None:
                segments.append(segment)
        with self._lock:
            if self._closed:  # shut down meanwhile: leave the files to another process
                self._release(claim)
                return
            claim.segments = segments
            self._adopted.append(claim)
            self._bytes += sum(s.size for s in segments)
            for segment in segments:
                self._number(segment)
            for segment in list(segments):
                self._delete_if_done(segment)
            if claim in self._adopted and not claim.segments:  # nothing left: no files
                _quietly(os.unlink, claim.lock_path)
                self._release(claim)
                self._adopted.remove(claim)

    def _can_adopt(self, writer: str, paths: list[str]) -> bool:
        """Whether this process may read every segment of a dead ``writer``, and knows its
        format; if not, the writer's files are left alone, said once (spool thread)."""
        for path in paths:
            base = path[: -len(fmt.SEGMENT_SUFFIX)]
            try:
                with fmt.open_regular(path) as file:
                    header = file.read(len(fmt.FILE_HEADER))
                for acks in (base + fmt.ACK_SUFFIX, base + fmt.LEGACY_ACK_SUFFIX):
                    with contextlib.suppress(FileNotFoundError), fmt.open_regular(acks):
                        pass
            except PermissionError as error:
                self._leave_unreadable(writer, error.filename or path)
                return False
            except OSError as error:
                if is_interruption(error):
                    raise
                continue  # removed meanwhile, or not readable now: read (or not) below
            version = fmt.other_version(header)
            if version is not None:
                self._left_alone.add(writer)
                self.counts["unknown_version"] += 1
                logger.warning(
                    "Segment spool file %s is in format version %d, which this release "
                    "does not read; it is left on disk for a release that does",
                    path,
                    version,
                )
                return False
        return True

    def _leave_unreadable(self, writer: str, path: str) -> None:
        """A dead ``writer``'s file this process lacks permission to open: its files are
        left for a process that may read them, said once (spool thread)."""
        self._left_alone.add(writer)
        self.counts["unreadable"] += 1
        owner: object = "unknown"
        with fmt.disk_errors_ignored():
            owner = os.stat(path).st_uid
        logger.warning(
            "this process lacks permission to open the Segment spool file %s (owner uid %s), "
            "left by a process that ended; its messages stay on disk for a process that may "
            "read them",
            path,
            owner,
        )

    def _remove_stray_acks(self, names: set[str], directory: str) -> None:
        """Remove a dead writer's acknowledgement files whose segment is gone (its process
        was killed between the two removals of a finished segment); its lock held."""
        for name in names:
            if fmt.is_acks(name) and name.rpartition(".")[0] + fmt.SEGMENT_SUFFIX not in names:
                _quietly(os.unlink, os.path.join(directory, name))

    def _read_orphan(self, claim: Claim, path: str, *, last: bool) -> Segment | None:
        """A dead writer's segment, its records waiting unless acknowledged; None if unreadable.

        Damage is skipped, counted and said: an empty file, or one of zeros, too,
        unless it is the writer's ``last`` (one it made ready and had yet to write).
        A damaged acknowledgement costs a message sent again, never one lost: what
        it named is not taken as delivered.
        """
        try:
            with fmt.open_regular(path) as file:
                blob = file.read()
        except OSError:
            return None
        scan = fmt.read_records(blob)
        if not last and not scan.records and not scan.damaged:
            scan.damaged = 1  # a later file of the writer's follows: this one held some
        base = path[: -len(fmt.SEGMENT_SUFFIX)]
        acks = fmt.read_acks(base + fmt.ACK_SUFFIX)
        legacy = fmt.read_legacy_acks(base + fmt.LEGACY_ACK_SUFFIX)
        todo = {ordinal for ordinal, _ in scan.records} - acks.ordinals - (legacy or set())
        if scan.damaged:
            logger.warning(
                "Segment spool file %s is damaged: %d stretch(es) skipped", path, scan.damaged
            )
        if acks.damaged:
            logger.warning(
                "Segment spool file %s is damaged: %d stretch(es) skipped; the messages they "
                "acknowledged are sent again",
                base + fmt.ACK_SUFFIX,
                acks.damaged,
            )
        segment = Segment(claim, path, count=len(todo), size=len(blob), sealed=True)
        segment.pending = todo
        if legacy is not None:
            segment.legacy_ack_path = base + fmt.LEGACY_ACK_SUFFIX
        self.counts["damaged"] += scan.damaged + acks.damaged
        self.counts["adopted"] += len(todo)
        return segment

    def _remove_stale_temporary(self, path: str) -> None:
        # A writer renames its locked temporary file at once; one left for a minute
        # and unlocked belongs to a process that died in between.
        try:
            if time.time() - os.stat(path).st_mtime < 60:
                return
        except OSError:
            return
        fd = fmt.lock_exclusive(path)
        if fd is not None:
            _quietly(os.unlink, path)
            os.close(fd)

    def _measure(self) -> None:
        """Bytes in this write key and host's directory, so that all its processes share
        one bound, and new segments sized for as many writers as it has."""
        total, writers = self._directory_usage()
        with self._lock:
            self._others = max(0, total - self._bytes)
            self._share_bound(writers)
            spare = None if self._keeps_spare else self._spare
            if spare is not None:  # too many writers for each to keep its next file
                self._spare = None
                self._seal(spare)
            self._say_if_room_again()

    def _say_if_room_again(self) -> None:
        """After refusals at the bound: said once the directory has room for a new file
        and no call was refused since the last tick (a file a caller made in a race at
        the bound is no return of room, and says nothing); lock held."""
        refused, self._refused_at_tick = self._refused_at_tick, self.counts["refused"]
        if self._past_bound and refused == self._refused_at_tick and self._has_room():
            self._past_bound = False
            self._say_later(
                "Segment spool at %s has room under spool_max_bytes again; new messages are "
                "written to it",
                self._directory,
            )

    def _directory_usage(self) -> tuple[int, int]:
        """Bytes in this write key and host's directory (every process's files), and how
        many processes write to it (their lock files).

        The directories of other write keys and hosts do not count: files no process
        of this one's may deliver (an old key's, after a rotation) never take its room.
        """
        total = writers = 0
        for entry in fmt.list_names(self._directory):
            writers += entry.endswith(fmt.LOCK_SUFFIX)
            with fmt.disk_errors_ignored():
                total += os.lstat(os.path.join(self._directory, entry)).st_size
        return total, writers

    def _requeue(self) -> int:
        """Move messages waiting on disk into the buffer while it has room; how many."""
        worker = self._worker
        if worker is None:
            return 0
        room = self._room - worker.queued
        with self._lock:
            waiting = [
                (s, s.size, set(s.pending))
                for claim in self._claims()
                if claim.lock_fd is not None
                for s in claim.segments
                if s.pending
            ]
        moved = 0
        for segment, size, wanted in waiting:
            if room <= 0:
                break
            try:
                blob = self._read(segment, size)
            except OSError as error:
                if is_interruption(error):  # (in flush(), on the caller's thread)
                    raise
                # Out of file descriptors, a permission, an I/O error: perhaps only
                # for now. Its messages stay waiting, for the next look.
                self._cannot_read(segment, error)
                continue
            if blob is None:  # removed behind our back: what waited in it is gone
                self._lose(segment, wanted, "was removed by another program")
                continue
            found: set[int] = set()
            for ordinal, message in fmt.read_records(blob).records:
                found.add(ordinal)
                if ordinal not in wanted or room <= 0:
                    continue
                with self._lock:
                    if ordinal not in segment.pending:
                        continue
                    segment.pending.discard(ordinal)
                    self._where[id(message)] = _location(segment, ordinal)
                refused = worker.put(message)
                if refused is not None:
                    with self._lock:
                        self._where.pop(id(message), None)
                        segment.pending.add(ordinal)
                    return moved
                self._requeued += 1
                moved += 1
                room -= 1
            lost = wanted - found
            if lost and room > 0:  # cut short or overwritten since they were written
                self._lose(segment, lost, "was damaged after its messages were written")
        return moved


def _copy(source: int, target: int, start: int, end: int) -> int:
    """Copy bytes ``start`` to ``end`` of one open file into another, at the same
    offsets; returns ``end``."""
    offset = start
    while offset < end:
        chunk = os.pread(source, min(end - offset, 1 << 20), offset)
        if not chunk:
            raise OSError(errno.EIO, f"the file ended at {offset} of {end} bytes")
        offset += os.pwrite(target, chunk, offset)
    return end


def _location(segment: Segment, ordinal: int) -> int:
    """Where record ``ordinal`` of ``segment`` is, as one int (``put()`` inlines it)."""
    if ordinal < _ORDINAL_SPAN:
        return segment.first + ordinal
    return ~(segment.serial << 32 | ordinal)  # an adopted file's large ordinal (u32)


def _place(location: int) -> tuple[int, int]:
    """The segment serial and the ordinal of a :func:`_location`."""
    if location >= 0:
        return location >> _ORDINAL_BITS, location & (_ORDINAL_SPAN - 1)
    location = ~location
    return location >> 32, location & _U32


def _names(path: str, fd: int) -> bool:
    """Whether ``path`` is still the name of the file open as ``fd``."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _fitting(size: int, free: int) -> int:
    """A file of ``size`` bytes, or on a filesystem smaller than the bound, one it can
    hold beside others: half its ``free`` bytes, 64 KiB at least."""
    return max(_MIN_SEGMENT_BYTES, min(size, free // 2))


def _free_bytes(directory: str) -> int:
    """The bytes free for this user on the filesystem of ``directory``."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def _close_lost_descriptor(path: str) -> None:
    """Close the descriptor of ``path`` that an interrupted ``os.open()`` made and nobody
    received (Linux; elsewhere it stays open until the process ends)."""
    target = os.path.realpath(path)
    for name in fmt.list_names("/proc/self/fd"):
        with fmt.disk_errors_ignored():
            if os.readlink(f"/proc/self/fd/{name}") == target:
                os.close(int(name))


def _quietly(function: Any, *args: Any) -> None:
    with fmt.disk_errors_ignored():
        function(*args)


class _Wake:
    """What ``threading.Event`` does for the spool thread's wake-ups, signal-safe.

    ``Event.set()`` takes a lock in Python code: a time limit (a signal handler's
    exception) landing there on a caller's thread leaves that lock held, and every
    later ``set()``, ``close()`` included, waits for it forever. Here ``set()`` is
    one C call on a queue; stopped before it, it only wakes nobody, and the spool
    thread looks again within its tick.
    """

    __slots__ = ("_tokens",)

    def __init__(self) -> None:
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def set(self) -> None:
        if self._tokens.empty():  # one token is enough, however many wake-ups
            self._tokens.put(None)

    def wait(self, timeout: float) -> bool:
        """Whether a wake-up came within ``timeout`` seconds (it is used up)."""
        try:
            self._tokens.get(timeout=timeout)
        except queue.Empty:
            return False
        return True

    def clear(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._tokens.get_nowait()
