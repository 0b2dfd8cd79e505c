"""A job's time limit that lands inside a call of the client reaches the job.

RQ's ``job_timeout`` and Celery's ``soft_time_limit`` raise an ``Exception`` from a
signal handler, wherever the job happens to be: in a user hook the client calls,
in a sync-mode request, in the spool's disk write. The client lets it through and
stays whole: the spool keeps working, and each message is accepted or not, never half.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from rq.timeouts import JobTimeoutException

from segment_core import Client, signals
from segment_core import _spool_format as fmt
from segment_core.collector.handle import CollectorHandle
from segment_core.errors import is_interruption

#: What a job's time limit raises: RQ's, Celery's, and a plain ``alarm()`` handler's
#: ``TimeoutError`` (an ``OSError``, as a disk failure is).
LIMITS: dict[str, Callable[[], Exception]] = {
    "rq job_timeout": lambda: JobTimeoutException("Task exceeded maximum timeout value"),
    "celery soft_time_limit": SoftTimeLimitExceeded,
    "alarm handler": lambda: TimeoutError("the job took too long"),
}
HOLD = {"flush_at": 2500, "flush_interval": 3600.0}


@contextlib.contextmanager
def time_limit(make: Callable[[], BaseException]) -> Iterator[Callable[[float], None]]:
    """Install a SIGALRM handler raising ``make()``; yield a function arming it."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise make()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield lambda seconds: signal.setitimer(signal.ITIMER_REAL, seconds)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def collector_client(segment_collector: CollectorHandle) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("retry_backoff_min", 0.01)
        options.setdefault("retry_backoff_max", 0.05)
        client = Client("key", host=segment_collector.url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(5)


def _sleep_then(value: Any) -> Callable[..., Any]:
    def hook(*args: Any, **kwargs: Any) -> Any:
        time.sleep(10)  # a slow lookup: the time limit lands here
        return value(*args) if callable(value) else value

    return hook


HOOKS: dict[str, dict[str, Any]] = {
    "before_send": {"before_send": _sleep_then(lambda message: message)},
    "now": {"now": _sleep_then(None)},
    "uid": {"uid": _sleep_then("id-1")},
}


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("hook", [*HOOKS, "message_enqueued receiver"])
def test_a_time_limit_in_a_slow_hook_stops_the_job(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
    hook: str,
    limit: str,
) -> None:
    client = collector_client(**HOOKS.get(hook, {}))
    receiver = _sleep_then(None)
    if hook == "message_enqueued receiver":
        signals.message_enqueued.connect(receiver, sender=client)
    started = time.monotonic()
    with time_limit(LIMITS[limit]) as arm, pytest.raises(type(LIMITS[limit]())):
        arm(0.05)
        client.track("u", "Stopped")
    assert time.monotonic() - started < 5
    assert not [r for r in caplog.records if r.name.startswith("segment")], caplog.text
    signals.message_enqueued.disconnect(receiver, sender=client)
    # The client goes on as before.
    if hook in HOOKS:
        client = collector_client()
    assert client.track("u", "After")[0]
    assert client.flush(10)
    segment_collector.wait_for(1, type="track", event="After")


def test_a_hook_raising_a_timeout_of_its_own_is_its_failure(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TimeoutError the hook raised itself (not a signal handler) is logged as ever."""

    def before_send(message: dict[str, Any]) -> dict[str, Any]:
        raise TimeoutError("the lookup timed out")

    client = collector_client(before_send=before_send)
    with time_limit(LIMITS["alarm handler"]):  # installed, never armed
        assert client.track("u", "Unchanged")[0]
    assert "before_send hook raised" in caplog.text
    assert client.flush(10)
    segment_collector.wait_for(1, type="track", event="Unchanged")


class GreenTimeout(BaseException):
    """Like ``gevent.Timeout`` and ``GreenletExit``: no ``Exception``."""


#: What stops a sync-mode send from outside: a job's limit, Ctrl-C, a green thread's timeout.
STOPS: dict[str, type[BaseException]] = {
    "rq job_timeout": JobTimeoutException,
    "Ctrl-C": KeyboardInterrupt,
    "a green timeout": GreenTimeout,
}


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ({"delay": 10, "status": 503}, {}),  # in the request
        ({"status": 503}, {"retry_backoff_min": 10, "retry_backoff_max": 10}),  # in the wait
    ],
    ids=["request", "retry wait"],
)
def test_a_time_limit_in_a_sync_mode_send_stops_the_job(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    fault: dict[str, Any],
    options: dict[str, Any],
    stop: str,
) -> None:
    errors: list[Any] = []
    client = collector_client(sync_mode=True, on_error=lambda *args: errors.append(args), **options)
    segment_collector.faults(fault)
    started = time.monotonic()
    with time_limit(STOPS[stop]) as arm, pytest.raises(STOPS[stop]):
        arm(0.3)
        client.track("u", "Stopped")
    assert time.monotonic() - started < 5
    stats = client.stats()
    assert (stats["accepted"], stats["sent"], stats["failed"], stats["pending"]) == (1, 0, 1, 0)
    assert stats["last_error"].startswith(f"interrupted by {STOPS[stop].__name__}")
    assert errors == []  # no hook runs once the job is to stop
    segment_collector.clear_faults()
    assert client.track("u", "After")[0]


# -- the spool ---------------------------------------------------------------------------


def spool_files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("*/*"))


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize(
    "options",
    [{}, {"spool_fsync": "always"}, {"max_queue_size": 5, **HOLD}],
    ids=["default", "fsync always", "a full buffer"],
)
def test_time_limits_landing_anywhere_in_track_leave_the_spool_whole(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    tmp_path: Path,
    options: dict[str, Any],
    limit: str,
) -> None:
    spool_dir = tmp_path / "spool"
    client = collector_client(spool_dir=spool_dir, **options)
    # Its threads started first: a time limit landing in threading.Thread.start()
    # itself may leave the new thread dead (Python's own limit, not the client's).
    assert client.track("u", "Looping", {"n": 0}, message_id="m-0")[0]
    returned: list[str] = ["m-0"]
    stopped: list[str] = []
    rounds = 60
    number = 0
    message_id = ""
    shuffle = random.Random(7)
    with time_limit(LIMITS[limit]) as arm:
        for _ in range(rounds):
            try:
                arm(shuffle.uniform(0.0002, 0.002))
                started = time.monotonic()
                while True:  # the job: tracking until its time limit stops it
                    assert time.monotonic() - started < 5, "the time limit was swallowed"
                    number += 1
                    message_id = f"m-{number}"
                    client.track("u", "Looping", {"n": number}, message_id=message_id)
                    returned.append(message_id)
            except Exception as error:
                if not is_interruption(error):
                    raise
                stopped.append(message_id)
    assert len(stopped) == rounds
    assert client.stats()["spool"]["in_memory_only"] is False
    assert client.flush(30)
    stats = client.stats()
    events = segment_collector.wait_for(stats["sent"], timeout=30, event="Looping", limit=100_000)
    delivered = Counter(e["message"]["messageId"] for e in events)
    assert max(delivered.values()) == 1
    assert segment_collector.summary()["duplicates"] == 0
    assert set(returned) <= set(delivered), "a message accepted was lost"
    assert set(delivered) <= set(returned) | set(stopped)
    # Each message counted once, as it was accepted; what a stopped call took back, never.
    assert stats["accepted"] == stats["sent"] == len(delivered)
    assert stats["spool"]["damaged"] == 0
    client.shutdown(10)
    assert spool_files(spool_dir) == []  # everything settled: nothing left for the next process


def test_a_stopped_write_is_taken_back(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopped right after its record reached the disk: the message is not accepted,
    and the next record takes its place (nothing for a reader to trip on)."""
    from segment_core import spool

    spool_dir = tmp_path / "spool"
    client = collector_client(spool_dir=spool_dir, spool_fsync="always", **HOLD)
    assert client.track("u", "Kept", {"n": 0})[0]
    sync = spool._sync_data

    def sync_then_stop(fd: int) -> None:
        sync(fd)
        raise JobTimeoutException("Task exceeded maximum timeout value")

    monkeypatch.setattr(spool, "_sync_data", sync_then_stop)
    with pytest.raises(JobTimeoutException):
        client.track("u", "Taken Back", {"n": 1})
    monkeypatch.setattr(spool, "_sync_data", sync)
    assert client.track("u", "Kept", {"n": 2})[0]
    [segment] = [
        path
        for path in spool_files(spool_dir)
        if path.name.endswith(fmt.SEGMENT_SUFFIX) and fmt.read_records(path.read_bytes()).records
    ]
    scan = fmt.read_records(segment.read_bytes())
    assert scan.damaged == 0
    assert [ordinal for ordinal, _ in scan.records] == [0, 1]
    assert b"Taken Back" not in segment.read_bytes()
    assert client.flush(10)
    events = segment_collector.wait_for(2, type="track")
    assert sorted(e["message"]["properties"]["n"] for e in events) == [0, 2]
    assert client.stats()["accepted"] == 2
    assert client.stats()["spool"]["in_memory_only"] is False


def open_segments_in(directory: Path) -> list[str]:
    """The segment files in ``directory`` this process holds open (a lock file it may)."""
    links = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            links.append(str(fd.readlink()))
    inside = str(directory.resolve())
    return [link for link in links if link.startswith(inside) and fmt.SEGMENT_SUFFIX in link]


@pytest.mark.parametrize("where", ["as its file is made", "as it is ready"])
def test_a_time_limit_landing_as_a_segment_is_made_leaves_no_file(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """The first call of a process makes its first segment file itself: a time limit
    landing there, at any point, leaves neither a file nor a descriptor behind."""
    from segment_core import spool

    spool_dir = tmp_path / "spool"
    client = collector_client(spool_dir=spool_dir)
    caller = threading.current_thread()
    stopped: list[str] = []
    if where == "as its file is made":
        real_open = os.open

        def open_then_stop(path: Any, *args: Any, **kwargs: Any) -> int:
            fd = real_open(path, *args, **kwargs)
            if str(path).endswith(fmt.SEGMENT_SUFFIX) and not stopped:
                stopped.append(str(path))
                raise SoftTimeLimitExceeded()  # as os.open() returns: its descriptor unseen
            return fd

        monkeypatch.setattr(os, "open", open_then_stop)
    else:
        create = spool.Spool._create_segment

        def create_then_stop(self: spool.Spool, *args: Any, **kwargs: Any) -> Any:
            segment = create(self, *args, **kwargs)
            if threading.current_thread() is caller and not stopped:
                stopped.append(segment.path)
                raise SoftTimeLimitExceeded()  # as the new file is ready
            return segment

        monkeypatch.setattr(spool.Spool, "_create_segment", create_then_stop)
    with pytest.raises(SoftTimeLimitExceeded):
        client.track("u", "Stopped", message_id="stopped")
    monkeypatch.undo()
    assert stopped
    if where == "as its file is made":
        assert not Path(stopped[0]).exists()
        assert open_segments_in(spool_dir) == []
    assert client.track("u", "After", message_id="after")[0]
    assert client.flush(10)
    [event] = segment_collector.wait_for(1, type="track")
    assert event["message"]["messageId"] == "after"
    stats = client.stats()
    assert stats["accepted"] == stats["sent"] == 1
    assert client.shutdown(10)
    assert spool_files(spool_dir) == []
    assert open_segments_in(spool_dir) == []


def test_a_time_limit_landing_as_the_spool_measures_its_directory_reaches_the_job(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing or unreadable directory is no error there; an alarm's TimeoutError
    (an OSError too) is the job's, and stops it."""
    from segment_core import _spool_format

    spool_dir = tmp_path / "spool"
    client = collector_client(spool_dir=spool_dir)
    listdir = os.listdir
    with time_limit(LIMITS["alarm handler"]):
        on_alarm = signal.getsignal(signal.SIGALRM)
        assert callable(on_alarm)

        def listdir_then_alarm(path: Any) -> list[str]:
            names = listdir(path)
            on_alarm(signal.SIGALRM, None)  # as the alarm's handler runs here
            return names

        monkeypatch.setattr(_spool_format.os, "listdir", listdir_then_alarm)
        with pytest.raises(TimeoutError):
            client.track("u", "Stopped", message_id="stopped")
        monkeypatch.undo()
    assert client.track("u", "After", message_id="after")[0]
    assert client.flush(10)
    [event] = segment_collector.wait_for(1, type="track")
    assert event["message"]["messageId"] == "after"
    assert client.shutdown(10)
    assert spool_files(spool_dir) == []


@pytest.mark.parametrize("taken", [False, True], ids=["not taken", "taken"])
@pytest.mark.parametrize("wait", ["flush", "spool thread"])
def test_a_message_stopped_on_its_way_to_the_buffer_is_sent_once(
    collector_client: Callable[..., Client],
    segment_collector: CollectorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    taken: bool,
    wait: str,
) -> None:
    """Written to disk, then stopped before or after the buffer took it: it is sent
    once, and counted once, either way."""
    spool_dir = tmp_path / "spool"
    client = collector_client(spool_dir=spool_dir, flush_at=1)
    worker = client._worker
    put = worker.put

    def put_then_stop(data: bytes) -> str | None:
        if taken:
            put(data)
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(worker, "put", put_then_stop)
    with pytest.raises(SoftTimeLimitExceeded):
        client.track("u", "Stopped", message_id="stopped")
    monkeypatch.setattr(worker, "put", put)
    assert client.track("u", "After", message_id="after")[0]
    if wait == "flush":
        assert client.flush(10)
    events = segment_collector.wait_for(2, timeout=15, type="track")
    assert sorted(e["message"]["messageId"] for e in events) == ["after", "stopped"]
    assert client.flush(10)
    stats = client.stats()
    assert stats["accepted"] == stats["sent"] == 2
    client.shutdown(10)
    assert spool_files(spool_dir) == []
    assert len(segment_collector.events(type="track")) == 2


def test_the_signal_handler_test_does_not_mistake_a_plain_error() -> None:
    try:
        raise TimeoutError("raised here, by no signal handler")
    except TimeoutError as error:
        assert not is_interruption(error)
    assert is_interruption(KeyboardInterrupt())
    assert is_interruption(JobTimeoutException("x"))
    assert is_interruption(SoftTimeLimitExceeded())
    assert not is_interruption(ValueError("x"))
