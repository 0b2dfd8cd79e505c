"""The spool on real processes against the collector: killed workers, long outages,
restarts, processes sharing one spool, damaged files."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from segment_core import _spool_format as fmt
from tests.core.spool.helpers import used_length
from tests.e2e.servers import (
    HOLD_UNTIL_EXIT,
    ITEM_EVENT,
    READY_TIMEOUT,
    ROOT,
    Server,
    app_env,
    free_port,
    gunicorn_argv,
    load,
    running,
    uwsgi_argv,
    uwsgi_binary,
)

pytestmark = pytest.mark.slow

FLASK = "tests.e2e.apps.flask_app:app"
UWSGI = uwsgi_binary()
#: Retries that give up fast: the outage outlasts the budget many times over.
SHORT_BUDGET = {
    "max_total_backoff_duration": 0.5,
    "retry_backoff_min": 0.05,
    "retry_backoff_max": 0.2,
    "shutdown_timeout": 1,
}


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.1)


class App:
    """``tests.e2e.apps.spool_app`` in its own process: tracks, then idles until stopped."""

    def __init__(self, count: int, tag: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.apps.spool_app", str(count), tag],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put)).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append)).start()

    @staticmethod
    def _read(pipe: Any, sink: Callable[[str], None]) -> None:
        with pipe:
            for line in pipe:
                sink(line)

    def line(self, timeout: float = 120.0) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output in {timeout:g}s:\n{''.join(self.stderr)}") from None

    def tracked(self) -> int:
        line = self.line()
        assert line.startswith("tracked "), line + "".join(self.stderr)
        return int(line.split()[1])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(30) == -signal.SIGKILL

    def stop(self) -> dict[str, Any]:
        """SIGTERM; the client's stats as the app printed them on its way out."""
        self.process.send_signal(signal.SIGTERM)
        stats: dict[str, Any] = json.loads(self.line(60))
        assert self.process.wait(30) == 0, "".join(self.stderr)
        return stats

    def ensure_gone(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture
def apps() -> Iterator[Callable[..., App]]:
    started: list[App] = []

    def start(count: int, tag: str, env: dict[str, str]) -> App:
        app = App(count, tag, env)
        started.append(app)
        return app

    yield start
    for app in started:
        app.ensure_gone()


def spool_segments(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("*/*" + fmt.SEGMENT_SUFFIX))


# -- a gunicorn worker killed under traffic -------------------------------------------------


def traffic_until(
    server: Server, done: Callable[[dict[int, int]], bool], *, first: int = 0
) -> dict[int, int]:
    """Request new items from four clients until ``done(answered)``; item -> serving pid."""
    answered: dict[int, int] = {}
    lock = threading.Lock()
    stopped = threading.Event()
    numbers = iter(range(first, 10**9))

    def client() -> None:
        while not stopped.is_set():
            with lock:
                n = next(numbers)
            try:
                response = requests.get(f"{server.url}/item/{n}", timeout=30)
            except requests.RequestException:
                continue  # cut by the kill: no answer, no promise
            if response.status_code == 200:
                with lock:
                    answered[n] = int(response.text)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client) for _ in range(4)]
        try:
            deadline = time.monotonic() + 60
            while True:
                with lock:
                    if done(dict(answered)):
                        break
                assert time.monotonic() < deadline, f"{len(answered)} answers"
                assert server.process.poll() is None, "gunicorn exited"
                stopped.wait(0.02)
        finally:
            stopped.set()
        for future in futures:
            future.result()
    return answered


def test_a_sigkilled_gunicorn_worker_loses_no_answered_request(
    segment_collector: Any, tmp_path: Path
) -> None:
    port = free_port()
    argv = gunicorn_argv(FLASK, port, "--worker-class", "sync")
    # Without the spool, the last two seconds of a worker's events die with it.
    options = {"flush_at": 2500, "flush_interval": 2}
    env = app_env(segment_collector.url, spool_dir=tmp_path / "spool", **options)
    with running("gunicorn", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        before = traffic_until(server, lambda a: len(a) >= 80 and len(set(a.values())) == 2)
        victim = max(set(before.values()), key=list(before.values()).count)
        os.kill(victim, signal.SIGKILL)  # mid-traffic: the kernel's OOM killer, say
        # Traffic goes on; the master replaces the worker, and the new one serves too.
        after = traffic_until(
            server,
            lambda a: len(a) >= 80 and bool(set(a.values()) - set(before.values())),
            first=10_000,
        )
        assert victim not in after.values()
        # The victim's events come from the spool, adopted by a live worker.
        poll(
            lambda: set(before) <= delivered_pages(segment_collector),
            READY_TIMEOUT,
            "the page calls of every request answered before the kill",
        )
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    pages = delivered_pages(segment_collector)
    assert set(before) <= pages, sorted(set(before) - pages)
    assert set(after) <= pages, sorted(set(after) - pages)
    assert "Traceback" not in log
    summary = segment_collector.summary()
    assert summary["bad"] == 0, summary


def delivered_pages(collector: Any) -> set[int]:
    events = collector.events(type="page", limit=100_000)
    return {int(e["message"]["properties"]["path"].rsplit("/", 1)[1]) for e in events}


# -- an outage longer than the retry budget, across a restart ------------------------------


def test_an_outage_across_a_restart_delivers_all_50000_events(
    segment_collector: Any, tmp_path: Path, apps: Callable[..., App]
) -> None:
    total = 50_000
    env = app_env(segment_collector.url, spool_dir=tmp_path / "spool", **SHORT_BUDGET)
    segment_collector.faults({"status": 503, "seconds": 3600})
    try:
        first = apps(total, "first", env)
        assert first.tracked() == total  # the buffer holds 10,000: the rest wait on disk
        # Batches run out of their retry budget and are kept, again and again.
        poll(
            lambda: segment_collector.summary()["requests"]["faulted"] >= 20,
            120,
            "refused requests",
        )
        stats = first.stop()  # a deploy during the outage
        assert stats["delivered"] is False
        assert stats["failed"] == 0 and stats["dropped"] == {}, stats
        assert stats["spool"]["kept"] > 0 and stats["spool"]["spilled"] > 0, stats
        restarted = apps(0, "restarted", env)  # sends nothing new of its own
        assert restarted.tracked() == 0
    finally:
        segment_collector.clear_faults()  # the collector recovers
    poll(lambda: segment_collector.summary()["total"] >= total, 180, f"{total} events")
    stats = restarted.stop()
    assert stats["delivered"] is True
    assert stats["spool"]["adopted"] == total, stats
    summary = segment_collector.summary()
    assert (summary["total"], summary["good"], summary["duplicates"]) == (total, total, 0)
    assert spool_segments(tmp_path / "spool") == []


# -- four processes, two die -----------------------------------------------------------------


def test_survivors_adopt_and_deliver_what_killed_processes_left(
    segment_collector: Any, tmp_path: Path, apps: Callable[..., App]
) -> None:
    per_process = 2_000
    env = app_env(segment_collector.url, spool_dir=tmp_path / "spool", **SHORT_BUDGET)
    segment_collector.faults({"status": 503, "seconds": 3600})
    try:
        processes = [apps(per_process, f"p{i}", env) for i in range(4)]
        for process in processes:
            assert process.tracked() == per_process
        for victim in processes[:2]:
            victim.kill()
    finally:
        segment_collector.clear_faults()
    everything = 4 * per_process
    poll(lambda: segment_collector.summary()["total"] >= everything, 120, "every event")
    survivors = [process.stop() for process in processes[2:]]
    # Each dead process's files went to exactly one survivor.
    assert sum(s["spool"]["adopted"] for s in survivors) == 2 * per_process, survivors
    summary = segment_collector.summary()
    assert (summary["total"], summary["duplicates"], summary["bad"]) == (everything, 0, 0)
    tags = {
        e["message"]["properties"]["tag"]
        for e in segment_collector.events(event="Spooled", limit=10_000)
    }
    assert tags == {"p0", "p1", "p2", "p3"}
    assert spool_segments(tmp_path / "spool") == []


# -- damaged files ---------------------------------------------------------------------------


def test_a_torn_file_and_a_garbage_file_deliver_the_good_records_and_count_the_bad(
    segment_collector: Any, tmp_path: Path, apps: Callable[..., App]
) -> None:
    spool_dir = tmp_path / "spool"
    env = app_env(segment_collector.url, spool_dir=spool_dir, **HOLD_UNTIL_EXIT)
    writer = apps(100, "writer", env)
    assert writer.tracked() == 100
    writer.kill()
    segment = spool_segments(spool_dir)[0]  # then an empty spare one
    data = segment.read_bytes()
    segment.write_bytes(data[: used_length(data) - 40])  # cut inside the last record
    garbage = segment.parent / "4242-0-0badf00d.000000.seg"
    garbage.write_bytes(os.urandom(64 * 1024))
    reader_env = app_env(segment_collector.url, spool_dir=spool_dir, flush_interval=0.2)
    reader = apps(0, "reader", reader_env)
    assert reader.tracked() == 0
    poll(lambda: segment_collector.summary()["total"] >= 99, 60, "the 99 good records")
    stats = reader.stop()
    assert stats["spool"]["damaged"] == 2, stats["spool"]
    assert stats["spool"]["adopted"] == 99
    numbers = sorted(
        e["message"]["properties"]["n"] for e in segment_collector.events(event="Spooled")
    )
    assert numbers == list(range(99))
    assert list(spool_dir.glob("*/*")) == []


# -- uWSGI workers forked from the master that loaded the app --------------------------------


@pytest.mark.skipif(UWSGI is None, reason="uWSGI is not installed (the dev extra installs it)")
@pytest.mark.parametrize("options", [(), ("--py-call-osafterfork",)], ids=["plain", "osafterfork"])
def test_uwsgi_workers_forked_from_the_loaded_app_answer_and_adopt(
    segment_collector: Any, tmp_path: Path, apps: Callable[..., App], options: tuple[str, ...]
) -> None:
    orphans = 2_000
    spool_dir = tmp_path / "spool"
    segment_collector.faults({"status": 503, "seconds": 3600})  # none delivered before the kill
    try:
        dead = apps(orphans, "dead", app_env(segment_collector.url, spool_dir=spool_dir))
        assert dead.tracked() == orphans
        dead.kill()
    finally:
        segment_collector.clear_faults()
    assert UWSGI is not None
    port = free_port()
    graceful_stop = ("--hook-master-start", "unix_signal:15 gracefully_kill_them_all")
    argv = uwsgi_argv(UWSGI, FLASK, port, "--enable-threads", *graceful_stop, *options)
    env = app_env(segment_collector.url, spool_dir=spool_dir, flush_interval=0.2)
    # Both workers answer within READY_TIMEOUT: a worker forked while a thread of the
    # master held the GIL would wait for it forever.
    with running("uwsgi", argv, port=port, env=env, log_dir=tmp_path, workers=2) as server:
        # uWSGI forks every worker, and each replacement, from the master: no thread of
        # the client's runs there (the app sent nothing from it).
        assert os.listdir(f"/proc/{server.process.pid}/task") == [str(server.process.pid)]
        # The workers look at the spool as they start, before any request.
        poll(
            lambda: segment_collector.summary()["total"] >= orphans,
            60,
            "the dead process's events",
        )
        load(server, 20)
        poll(lambda: segment_collector.summary()["total"] >= orphans + 40, 60, "the items'")
        assert server.stop(signal.SIGTERM) == 0
        log = server.log()
    assert "Traceback" not in log
    summary = segment_collector.summary()
    assert (summary["total"], summary["duplicates"], summary["bad"]) == (orphans + 40, 0, 0)
    items = segment_collector.events(event=ITEM_EVENT, limit=100)
    assert sorted(e["message"]["properties"]["n"] for e in items) == list(range(20))
