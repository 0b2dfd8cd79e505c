"""Benchmark: how many events per second the local collector receives.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/collector_throughput.py                 # 100,000 events
    .venv/bin/python benchmarks/collector_throughput.py --events 20000  # a quick run
    .venv/bin/python benchmarks/collector_throughput.py --db /tmp/bench.sqlite3

It starts the collector in a subprocess (``python -m segment_core.collector --port
0``; one process, one event loop, so one core), prepares batches of realistic
messages up front, then sends them from several threads over keep-alive HTTP/1.1
connections and prints events received per second, wall clock and per second of
the collector's own CPU time. It stops after ``--events`` events or
``--max-seconds``, whichever comes first, and checks that every event was stored.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from urllib.parse import SplitResult, urlsplit

import orjson
import psutil  # type: ignore[import-untyped]

TARGET_EVENTS_PER_SECOND = 20_000


def make_batches(count: int, batch_size: int) -> list[bytes]:
    """`count` batch bodies of `batch_size` valid, distinct track/page/identify calls."""
    run = uuid.uuid4().hex[:8]
    context = {
        "library": {"name": "bench", "version": "1.0"},
        "ip": "203.0.113.7",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) bench",
        "page": {"path": "/checkout", "url": "https://shop.example.com/checkout"},
    }
    bodies = []
    for b in range(count):
        messages = []
        for i in range(batch_size):
            n = b * batch_size + i
            message = {
                "messageId": f"bench-{run}-{n}",
                "timestamp": "2024-05-01T12:00:00.000Z",
                "userId": f"user-{n % 5000}",
                "anonymousId": f"anon-{n % 9000}",
                "context": context,
                "integrations": {"All": True},
            }
            if n % 10 == 0:
                message.update(type="page", name="Checkout", properties={"path": "/checkout"})
            elif n % 10 == 1:
                message.update(type="identify", traits={"email": f"u{n}@example.com"})
            else:
                message.update(
                    type="track",
                    event="Product Added",
                    properties={"sku": f"SKU-{n % 300}", "price": 19.99, "quantity": 1 + n % 3},
                )
            messages.append(message)
        body = {"batch": messages, "sentAt": "2024-05-01T12:00:01.000Z", "writeKey": "bench"}
        bodies.append(orjson.dumps(body))
    return bodies


@contextmanager
def collector(db: str | None) -> Iterator[tuple[str, psutil.Process]]:
    command = [sys.executable, "-m", "segment_core.collector", "--port", "0"]
    if db:
        command += ["--db", db]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"http://[^\s]+", line)
            if not match:
                raise SystemExit(f"the collector did not start: {line!r}")
            yield match.group(0), psutil.Process(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def request(connection: HTTPConnection, method: str, path: str, body: bytes = b"") -> bytes:
    headers = {"Content-Type": "application/json"}
    connection.request(method, path, body=body or None, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
    return data


def query(method: str, url: SplitResult) -> bytes:
    """One request to the collector's summary, on a connection of its own."""
    connection = HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        return request(connection, method, "/collector/summary")
    finally:
        connection.close()


def send_all(url: str, bodies: list[bytes], threads: int, max_seconds: float) -> tuple[int, float]:
    """Send `bodies` from `threads` threads; return (requests sent, seconds taken)."""
    parts = urlsplit(url)
    lock = threading.Lock()
    next_index = 0
    sent = 0
    deadline = time.monotonic() + max_seconds
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal next_index, sent
        connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if next_index >= len(bodies):
                        return
                    body = bodies[next_index]
                    next_index += 1
                request(connection, "POST", "/v1/batch", body)
                with lock:
                    sent += 1
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sent, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to send (100000)")
    parser.add_argument("--batch-size", type=int, default=100, help="messages per batch (100)")
    parser.add_argument("--threads", type=int, default=4, help="sending threads (4)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time budget (60)")
    parser.add_argument("--db", default=None, help="SQLite file for the collector (in memory)")
    args = parser.parse_args()

    batches = max(1, args.events // args.batch_size)
    print(f"preparing {batches} batches of {args.batch_size} messages...", flush=True)
    bodies = make_batches(batches, args.batch_size)
    average = sum(map(len, bodies)) / len(bodies)
    with collector(args.db) as (url, process):
        summary_url = urlsplit(url)
        query("GET", summary_url)  # the server is ready
        cpu_before = process.cpu_times()
        sent, elapsed = send_all(url, bodies, args.threads, args.max_seconds)
        cpu_after = process.cpu_times()
        summary = orjson.loads(query("GET", summary_url))
    events = sent * args.batch_size
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    rate = events / elapsed
    print(
        f"{events:,} events in {sent:,} requests of {args.batch_size} "
        f"(~{average / 1024:.1f} KB each) from {args.threads} threads in {elapsed:.2f} s"
    )
    print(f"collector: {summary['good']:,} good, {summary['bad']:,} bad stored")
    print(f"received: {rate:,.0f} events/s wall clock; collector CPU {cpu:.2f} s")
    if cpu > 0:
        print(f"          {events / cpu:,.0f} events per collector CPU-second")
    print(f"machine: {os.cpu_count()} CPUs; target {TARGET_EVENTS_PER_SECOND:,} events/s")
    if summary["good"] != events or summary["bad"]:
        raise SystemExit("not every event was stored as good")
    if rate < TARGET_EVENTS_PER_SECOND:
        raise SystemExit(f"below the target of {TARGET_EVENTS_PER_SECOND:,} events/s")


if __name__ == "__main__":
    main()
