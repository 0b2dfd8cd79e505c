"""Benchmark: segment_core's Client against analytics-python's, on the same events.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/core.py            # the table (about a minute)
    .venv/bin/python benchmarks/core.py --json     # the same figures as JSON
    .venv/bin/python benchmarks/core.py --events 5000   # a quick run

The parent process starts a loopback receiver (a small asyncio HTTP/1.1 server in
its own process) and then, one after another, a fresh child process per library
and measurement (``core.py --library ours|analytics-python --phase ...``). Each
child prints one JSON line; the parent prints the table. See
``benchmarks/README.md`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection
from importlib import metadata
from typing import Any

LIBRARIES = ("analytics-python", "ours")
WRITE_KEY = "bench-write-key"
MAX_QUEUE_SIZE = 100_000
#: The project's targets, as "ours is at least N times better than analytics-python".
TARGETS = {"per_call": 8.0, "events_per_s": 5.0, "cpu_per_10k": 4.0}
#: The spool's target: track() costs at most this many µs more than in memory.
SPOOL_EXTRA_US = 3.0

TIMES = "\u00d7"  # the multiplication sign

EventArgs = tuple[str, str, dict[str, Any]]


# -- the loopback receiver ----------------------------------------------------------


@dataclass
class _Counters:
    messages: int = 0
    requests: int = 0
    body_bytes: int = 0
    errors: int = 0
    #: Per sender (the first segment of the path, e.g. "flask-segment"): the same
    #: counts, for benchmarks that point several senders at one receiver.
    sources: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, source: str, messages: int, body_bytes: int, discarded: int = 0) -> None:
        self.requests += 1
        self.body_bytes += body_bytes
        self.messages += messages
        counts = self.sources.get(source)
        if counts is None:
            counts = self.sources[source] = dict.fromkeys(
                ("messages", "requests", "body_bytes", "discarded"), 0
            )
        counts["messages"] += messages
        counts["requests"] += 1
        counts["body_bytes"] += body_bytes
        counts["discarded"] += discarded


_OK = b'{"success":true}'
_MAX_HEAD = 64 * 1024


def _response(status: str, body: bytes, *, close: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode() + body


class _Ingest(asyncio.Protocol):
    """Answers ``POST /v1/batch`` with 200 and counts messages; ``GET /count`` reports."""

    def __init__(self, counters: _Counters) -> None:
        self._counters = counters
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._need: int | None = None
        self._request: tuple[bytes, bytes, bytes, bool] = (b"", b"", b"", False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            if self._need is None:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        self._close()
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                if not self._parse_head(head):
                    return
            need = self._need
            assert need is not None
            if len(buffer) < need:
                return
            body = bytes(buffer[:need])
            del buffer[:need]
            self._need = None
            self._answer(body)

    def _parse_head(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self._close()
            return False
        length = 0
        encoding = b""
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"content-encoding":
                encoding = value
            elif name == b"connection":
                close = value == b"close"
            elif name == b"transfer-encoding":
                self._close()  # every sender measured here sends a Content-Length
                return False
        self._need = length
        self._request = (parts[0], parts[1], encoding, close)
        return True

    def _answer(self, body: bytes) -> None:
        method, path, encoding, close = self._request
        counters = self._counters
        if method == b"POST" and path.endswith(_INGEST_PATHS):
            try:
                raw = _decompress(body, encoding)
                messages, discarded = _count_messages(path, raw)
            except Exception:  # a body this receiver cannot read: counted, refused
                counters.errors += 1
                self._send(_response("400 Bad Request", b'{"success":false}', close=close))
                return
            source = path[1:].partition(b"/")[0].decode("latin-1")
            counters.count(source, messages, len(body), discarded)
            # OTLP answers with a protobuf message: an empty body is an empty one.
            answer = b"" if path.endswith(b"/v1/traces") else _OK
            self._send(_response("200 OK", answer, close=close))
        elif method == b"GET" and path == b"/count":
            report = {
                "messages": counters.messages,
                "requests": counters.requests,
                "body_bytes": counters.body_bytes,
                "errors": counters.errors,
                "cpu_s": time.process_time(),
                "sources": counters.sources,
            }
            self._send(_response("200 OK", json.dumps(report).encode(), close=close))
        else:
            self._send(_response("404 Not Found", b"{}", close=close))
        if close:
            self._close()

    def _send(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


#: What the receiver ingests: Segment's batch endpoint (``segment_core``,
#: analytics-python), PostHog's ``/batch/``, OTLP/HTTP traces and Sentry envelopes.
_INGEST_PATHS = (b"/batch", b"/batch/", b"/v1/traces", b"/envelope/")


def _decompress(body: bytes, encoding: bytes) -> bytes:
    if not encoding or encoding == b"identity":
        return body
    if encoding in (b"gzip", b"deflate"):
        return zlib.decompress(body, 47)  # 47: a gzip or a zlib header
    if encoding == b"br":
        import brotli  # type: ignore[import-not-found,unused-ignore]

        data: bytes = brotli.decompress(body)
        return data
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


def _count_messages(path: bytes, raw: bytes) -> tuple[int, int]:
    """How many events one request carries, in the format its path implies; and how
    many the sender reports it discarded (Sentry's client reports)."""
    if path.endswith(b"/batch/"):  # PostHog: {"batch": [...], "api_key": ...}
        return len(json.loads(raw)["batch"]), 0
    if path.endswith(b"/v1/traces"):
        return _count_otlp_spans(raw), 0
    if path.endswith(b"/envelope/"):
        return _count_envelope(raw)
    return raw.count(b'"messageId"'), 0  # Segment: one "messageId" per message


def _protobuf_fields(data: bytes) -> list[tuple[int, bytes]]:
    """The length-delimited fields of one protobuf message: ``(number, bytes)``."""
    fields: list[tuple[int, bytes]] = []
    position, end = 0, len(data)

    def varint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    while position < end:
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            varint()
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == 2:
            length = varint()
            fields.append((number, data[position : position + length]))
            position += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
    return fields


def _count_otlp_spans(raw: bytes) -> int:
    """Spans in an OTLP ``ExportTraceServiceRequest``.

    resource_spans = 1 -> scope_spans = 2 -> spans = 2.
    """
    return sum(
        1
        for number, resource_spans in _protobuf_fields(raw)
        if number == 1
        for inner, scope_spans in _protobuf_fields(resource_spans)
        if inner == 2
        for field_number, _ in _protobuf_fields(scope_spans)
        if field_number == 2
    )


def _count_envelope(raw: bytes) -> tuple[int, int]:
    """Transactions in a Sentry envelope (a header line, then items), and those its
    client reports say the SDK discarded."""
    transactions = discarded = 0
    position = raw.find(b"\n") + 1  # after the envelope's header
    while 0 < position < len(raw):
        end = raw.find(b"\n", position)
        end = len(raw) if end < 0 else end
        line = raw[position:end]
        position = end + 1
        if not line.strip():
            continue
        header = json.loads(line)
        length = header.get("length")
        if length is None:  # the payload runs to the next newline
            end = raw.find(b"\n", position)
            end = len(raw) if end < 0 else end
        else:
            end = position + int(length)
        payload = raw[position:end]
        position = end + 1
        if header.get("type") == "transaction":
            transactions += 1
        elif header.get("type") == "client_report":
            for event in json.loads(payload).get("discarded_events", ()):
                if event.get("category") == "transaction":
                    discarded += int(event.get("quantity", 0))
    return transactions, discarded


class _Hold(asyncio.Protocol):
    """Accepts connections and reads requests but never answers: an unreachable API."""

    def data_received(self, data: bytes) -> None:
        pass


def _exit_when_parent_goes() -> None:
    # The parent holds our stdin open; EOF means it is gone (even if it was killed).
    sys.stdin.buffer.read()
    os._exit(0)


async def _serve_receiver() -> None:
    loop = asyncio.get_running_loop()
    counters = _Counters()
    ingest = await loop.create_server(lambda: _Ingest(counters), "127.0.0.1", 0, backlog=128)
    hold = await loop.create_server(_Hold, "127.0.0.1", 0, backlog=128)
    ingest_port = ingest.sockets[0].getsockname()[1]
    hold_port = hold.sockets[0].getsockname()[1]
    print(f"{ingest_port} {hold_port}", flush=True)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    await asyncio.Event().wait()


def run_receiver() -> None:
    asyncio.run(_serve_receiver())


def receiver_report(port: int) -> dict[str, Any]:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/count")
        report: dict[str, Any] = json.loads(connection.getresponse().read())
        return report
    finally:
        connection.close()


# -- the events and the two clients ------------------------------------------------

_EVENT_NAMES = ("Order Completed", "Product Viewed", "Signed Up", "Checkout Started")


def make_events(count: int = 1000) -> list[EventArgs]:
    """``count`` distinct ``(user_id, event, properties)`` triples, the same for both."""
    events: list[EventArgs] = []
    for i in range(count):
        properties: dict[str, Any] = {
            "order_id": f"ord-{i:06d}",
            "revenue": 12.5 + i % 100,
            "currency": "USD",
            "plan": "pro" if i % 3 else "free",
            "coupon": None,
            "products": [{"sku": f"sku-{i % 37}", "quantity": 1 + i % 3, "price": 9.99}],
        }
        events.append((f"user-{i % 500:05d}", _EVENT_NAMES[i % len(_EVENT_NAMES)], properties))
    return events


@dataclass
class Subject:
    """One library's client behind a common face."""

    library: str
    client: Any
    version: str
    gzip: bool
    flush: Callable[[float], bool] = field(repr=False)
    queued: Callable[[], int] = field(repr=False)


def make_subject(library: str, host: str, gzip: bool | None, **options: Any) -> Subject:
    """A client with its library's defaults but ``host``, the write key and the queue size."""
    if gzip is not None:
        options["gzip"] = gzip
    if library == "ours":
        import segment_core

        ours = segment_core.Client(WRITE_KEY, host=host, max_queue_size=MAX_QUEUE_SIZE, **options)
        return Subject(
            library=library,
            client=ours,
            version=segment_core.__version__,
            gzip=ours.config.gzip,
            flush=lambda timeout: ours.flush(timeout=timeout),
            queued=lambda: int(ours.stats()["pending"]),
        )
    from segment.analytics import Client as SegmentClient
    from segment.analytics.version import VERSION

    theirs = SegmentClient(WRITE_KEY, host=host, max_queue_size=MAX_QUEUE_SIZE, **options)

    def bounded_flush(timeout: float) -> bool:
        # analytics-python's flush() is queue.join() with no time limit.
        waiter = threading.Thread(target=theirs.flush, name="bench-flush", daemon=True)
        waiter.start()
        waiter.join(timeout)
        return not waiter.is_alive()

    return Subject(
        library=library,
        client=theirs,
        version=VERSION,
        gzip=bool(theirs.gzip),
        flush=bounded_flush,
        queued=lambda: int(theirs.queue.qsize()),
    )


# -- the child measurements --------------------------------------------------------


def measure_delivery(
    library: str,
    port: int,
    gzip: bool | None,
    events: int,
    chunk: int,
    flush_timeout: float,
    spool_dir: str | None = None,
) -> dict[str, Any]:
    """Per-call cost, delivered events/s and CPU, all from one run of ``events`` track calls."""
    host = f"http://127.0.0.1:{port}"
    options = {"spool_dir": spool_dir} if spool_dir else {}
    subject = make_subject(library, host, gzip, **options)
    templates = make_events()
    track = subject.client.track

    # Warm-up: start the sender, open the connection, fill caches. Not measured.
    for user_id, event, properties in templates[:500]:
        track(user_id, event, properties)
    warm_ok = subject.flush(30.0)
    before = receiver_report(port)

    chunks = [
        [templates[(start + k) % len(templates)] for k in range(min(chunk, events - start))]
        for start in range(0, events, chunk)
    ]
    chunk_ns: list[int] = []
    refused = 0
    perf_ns = time.perf_counter_ns
    gc.collect()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for group in chunks:
        started = perf_ns()
        for user_id, event, properties in group:
            accepted, _ = track(user_id, event, properties)
            if not accepted:
                refused += 1
        chunk_ns.append((perf_ns() - started) // len(group) if group else 0)
    enqueue_s = time.perf_counter() - wall_start
    flushed = subject.flush(flush_timeout)
    wall_s = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start

    after = receiver_report(port)
    delivered = after["messages"] - before["messages"]
    per_call_us = sorted(ns / 1000 for ns in chunk_ns)
    result: dict[str, Any] = {
        "library": library,
        "version": subject.version,
        "phase": "delivery",
        "spool": bool(spool_dir),
        "gzip": subject.gzip,
        "events": events,
        "chunk": chunk,
        "warmup_flushed": warm_ok,
        "per_call_us_median": statistics.median(per_call_us),
        "per_call_us_p10": per_call_us[len(per_call_us) // 10],
        "per_call_us_p90": per_call_us[(len(per_call_us) * 9) // 10],
        "per_call_us_mean": enqueue_s * 1e6 / events,
        "refused": refused,
        "flushed": flushed,
        "flush_timeout_s": flush_timeout,
        "enqueue_s": enqueue_s,
        "wall_s": wall_s,
        "delivered": delivered,
        "requests": after["requests"] - before["requests"],
        "body_bytes": after["body_bytes"] - before["body_bytes"],
        "receiver_errors": after["errors"] - before["errors"],
        "receiver_cpu_s": after["cpu_s"] - before["cpu_s"],
        "events_per_s": delivered / wall_s if wall_s else 0.0,
        "cpu_s": cpu_s,
        "cpu_s_per_10k": cpu_s * 10_000 / delivered if delivered else None,
        "cpu_us_per_event": cpu_s * 1e6 / delivered if delivered else None,
    }
    if library == "ours":
        result["client_stats"] = {
            k: v for k, v in subject.client.stats().items() if k != "last_error"
        }
    return result


def _rss_bytes() -> int:
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - psutil is a dev dependency
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


def measure_rss(
    library: str, hold_port: int, events: int, chunk: int, spool_dir: str | None = None
) -> dict[str, Any]:
    """Resident memory added by ``events`` messages waiting in the client.

    The host accepts connections and never answers, so whatever a client takes
    out of its queue stays in flight: every message stays in the process. The
    sender is then blocked on a socket, so the per-call time measured here is the
    caller's own cost without a busy sender thread competing for the GIL.
    """
    options = {"spool_dir": spool_dir} if spool_dir else {}
    subject = make_subject(library, f"http://127.0.0.1:{hold_port}", None, **options)
    templates = make_events()
    track = subject.client.track
    for user_id, event, properties in templates[:100]:
        track(user_id, event, properties)
    batch = [templates[i % len(templates)] for i in range(events)]
    time.sleep(0.3)
    gc.collect()
    rss_before = _rss_bytes()
    refused = 0
    chunk_ns: list[int] = []
    perf_ns = time.perf_counter_ns
    cpu_start = time.process_time()
    for start in range(0, events, chunk):
        group = batch[start : start + chunk]
        started = perf_ns()
        for user_id, event, properties in group:
            accepted, _ = track(user_id, event, properties)
            if not accepted:
                refused += 1
        chunk_ns.append((perf_ns() - started) // len(group))
    cpu_s = time.process_time() - cpu_start
    time.sleep(0.5)  # let the sender thread take (and send into the void) what it will
    gc.collect()
    rss_after = _rss_bytes()
    return {
        "library": library,
        "version": subject.version,
        "phase": "rss",
        "spool": bool(spool_dir),
        "gzip": subject.gzip,
        "events": events,
        "refused": refused,
        "still_queued": subject.queued(),
        "per_call_us_median": statistics.median(ns / 1000 for ns in chunk_ns),
        "cpu_us_per_call": cpu_s * 1e6 / events,
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
        "rss_delta_mb": (rss_after - rss_before) / 2**20,
        "bytes_per_event": (rss_after - rss_before) / events,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
    gzip = {"default": None, "on": True, "off": False}[args.gzip]
    # The spool in the machine's temporary directory (a local disk here).
    spool_dir = tempfile.mkdtemp(prefix="segment-bench-spool-") if args.spool else None
    try:
        if args.phase == "delivery":
            result = measure_delivery(
                args.library,
                args.port,
                gzip,
                args.events,
                args.chunk,
                args.flush_timeout,
                spool_dir,
            )
        else:
            result = measure_rss(
                args.library, args.hold_port, args.rss_events, args.chunk, spool_dir
            )
    finally:
        if spool_dir:
            shutil.rmtree(spool_dir, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # Skip atexit: a held request or a stuck flush must not keep the child alive.
    os._exit(0)


# -- the parent ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    key: str
    library: str
    phase: str
    gzip: str = "default"
    spool: bool = False


RUNS = (
    Run("ap", "analytics-python", "delivery"),
    Run("ours", "ours", "delivery"),
    Run("ours_spool", "ours", "delivery", spool=True),
    Run("ours_nogzip", "ours", "delivery", gzip="off"),
    Run("ap_rss", "analytics-python", "rss"),
    Run("ours_rss", "ours", "rss"),
    Run("ours_spool_rss", "ours", "rss", spool=True),
)

Results = dict[str, list[dict[str, Any]]]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def start_receiver() -> tuple[subprocess.Popen[bytes], int, int]:
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--receiver"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode().split()
    if len(line) != 2:
        process.kill()
        raise RuntimeError("the receiver did not start")
    return process, int(line[0]), int(line[1])


def run_child_process(
    args: argparse.Namespace, run: Run, port: int, hold_port: int, remaining: float
) -> dict[str, Any]:
    """One fresh interpreter for one library and one measurement; its JSON line, parsed."""
    flush_timeout = max(1.0, min(args.flush_timeout, remaining - 15))
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--library", run.library,
        "--phase", run.phase,
        "--gzip", run.gzip,
        "--port", str(port),
        "--hold-port", str(hold_port),
        "--events", str(args.events),
        "--chunk", str(args.chunk),
        "--rss-events", str(args.rss_events),
        "--flush-timeout", str(flush_timeout),
        *(["--spool"] if run.spool else []),
    ]  # fmt: skip
    limit = flush_timeout + 45
    try:
        done = subprocess.run(command, capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"child timed out after {limit:.0f}s"}
    lines = done.stdout.decode().strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"child exited {done.returncode}: {done.stderr.decode()[-2000:]}"}
    return result


def run_children(args: argparse.Namespace, port: int, hold_port: int) -> Results:
    """Every run ``--repeat`` times, interleaved, so drift in load hits both libraries."""
    deadline = time.monotonic() + args.budget
    results: Results = {run.key: [] for run in RUNS}
    for round_ in range(args.repeat):
        for run in RUNS:
            remaining = deadline - time.monotonic()
            if remaining < 10:
                results[run.key].append({"error": "skipped: time budget spent"})
                continue
            if not args.json:
                print(
                    f"  [{round_ + 1}/{args.repeat}] {run.library} {run.phase} "
                    f"(gzip {run.gzip}) ...",
                    file=sys.stderr,
                )
            results[run.key].append(run_child_process(args, run, port, hold_port, remaining))
    return results


def _values(results: Results, key: str, name: str) -> list[float | None]:
    values: list[float | None] = []
    for result in results.get(key, []):
        value = result.get(name)
        values.append(float(value) if isinstance(value, (int, float)) else None)
    return values


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(theirs: float | None, ours: float | None, higher_is_better: bool) -> float | None:
    if theirs is None or ours is None or theirs <= 0 or ours <= 0:
        return None
    return ours / theirs if higher_is_better else theirs / ours


_SPECS: Sequence[tuple[str, str, str, str, str, bool, str | None]] = (
    ("track() median µs/call, caller thread", "ap", "ours", "per_call_us_median",
     "{:.2f}", False, "per_call"),
    ("track() p90 µs/call (of the chunks)", "ap", "ours", "per_call_us_p90",
     "{:.2f}", False, None),
    ("track() median µs/call, sender idle", "ap_rss", "ours_rss", "per_call_us_median",
     "{:.2f}", False, None),
    ("delivered events/s (default gzip)", "ap", "ours", "events_per_s",
     "{:,.0f}", True, "events_per_s"),
    ("delivered events/s (ours gzip=False)", "ap", "ours_nogzip", "events_per_s",
     "{:,.0f}", True, None),
    ("track() median µs/call, ours spool on", "ap", "ours_spool", "per_call_us_median",
     "{:.2f}", False, None),
    ("track() median µs/call, idle, spool on", "ap_rss", "ours_spool_rss",
     "per_call_us_median", "{:.2f}", False, None),
    ("delivered events/s (ours spool on)", "ap", "ours_spool", "events_per_s",
     "{:,.0f}", True, "events_per_s"),
    ("CPU s / 10k delivered (default gzip)", "ap", "ours", "cpu_s_per_10k",
     "{:.3f}", False, "cpu_per_10k"),
    ("CPU s / 10k delivered (ours gzip=False)", "ap", "ours_nogzip", "cpu_s_per_10k",
     "{:.3f}", False, None),
    ("RSS growth, 10k queued (MB)", "ap_rss", "ours_rss", "rss_delta_mb",
     "{:.1f}", False, None),
)  # fmt: skip


def build_rows(results: Results) -> list[dict[str, Any]]:
    """Per metric: the median of the repeats for each library, their ratio (>1: ours
    better), the range of the per-round ratios, and the project's target."""
    rows = []
    for label, theirs_key, ours_key, name, fmt, higher, target in _SPECS:
        theirs_all = _values(results, theirs_key, name)
        ours_all = _values(results, ours_key, name)
        theirs, ours = _median(theirs_all), _median(ours_all)
        ratio = _ratio(theirs, ours, higher)
        per_round = [
            r for r in map(_ratio, theirs_all, ours_all, [higher] * len(ours_all)) if r is not None
        ]
        goal = TARGETS.get(target) if target else None
        rows.append(
            {
                "metric": label,
                "analytics-python": theirs,
                "ours": ours,
                "ratio": ratio,
                "ratio_min": min(per_round) if per_round else None,
                "ratio_max": max(per_round) if per_round else None,
                "target": goal,
                "met": None if goal is None or ratio is None else ratio >= goal,
                "analytics-python_all": theirs_all,
                "ours_all": ours_all,
                "_fmt": fmt,
            }
        )
    return rows


_M, _A, _O = 42, 18, 17  # column widths: metric, analytics-python, ours


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _count_cell(runs: list[dict[str, Any]]) -> str:
    done = [r for r in runs if "delivered" in r]
    if not done:
        return "n/a"
    return f"{sum(r['delivered'] for r in done):,}/{sum(r['events'] for r in done):,}"


def _sum_cell(name: str) -> Callable[[list[dict[str, Any]]], str]:
    def cell(runs: list[dict[str, Any]]) -> str:
        values = [r[name] for r in runs if name in r]
        return f"{sum(values):,}" if values else "n/a"

    return cell


def _flushed_cell(runs: list[dict[str, Any]]) -> str:
    done = [r for r in runs if "flushed" in r]
    return f"{sum(bool(r['flushed']) for r in done)}/{len(runs)}" if runs else "n/a"


def _requests_cell(runs: list[dict[str, Any]]) -> str:
    done = [r for r in runs if "requests" in r]
    if not done:
        return "n/a"
    return f"{statistics.median(r['requests'] for r in done):,.0f} ({_gzip_word(done[0])})"


def _gzip_word(result: dict[str, Any]) -> str:
    return "gzip" if result["gzip"] else "plain"


def _busy_cell(runs: list[dict[str, Any]]) -> str:
    shares = [r["receiver_cpu_s"] / r["wall_s"] for r in runs if r.get("wall_s")]
    return f"{max(shares):.0%}" if shares else "n/a"


def spool_extra_us(results: Results, idle: bool = False, cpu: bool = False) -> float | None:
    """Median over the rounds of (spool on - in memory) track() µs/call, paired per round.

    ``idle``: from the runs where the sender is blocked (the caller's own cost, without
    a busy sender thread competing for the GIL). ``cpu``: from the process's CPU time
    instead of the caller's wall-clock time: per delivered event over the whole
    delivery run (every thread's work for it: writing, settling, removing files), or
    per call with the sender idle. Time the process spends waiting for a core, which
    another tenant's load lengthens, is left out: the steadier figure on a busy machine.
    """
    spool, memory = ("ours_spool_rss", "ours_rss") if idle else ("ours_spool", "ours")
    metric = ("cpu_us_per_call" if idle else "cpu_us_per_event") if cpu else "per_call_us_median"
    pairs = zip(
        _values(results, spool, metric),
        _values(results, memory, metric),
        strict=False,
    )
    return _median([s - m for s, m in pairs if s is not None and m is not None])


def print_table(results: Results, info: dict[str, Any]) -> None:
    print(
        f"Python {info['python']} | segment_core (segment-web) {info['ours_version']} | "
        f"analytics-python (segment-analytics-python) {info['ap_version']}"
    )
    print(
        f"{info['events']:,} track() events per delivery run, timed in chunks of "
        f"{info['chunk']:,}; RSS with {info['rss_events']:,} queued; median of "
        f"{info['repeat']} round(s), each run in a fresh process; {info['cpus']} CPUs, "
        f"load average at start {info['loadavg']}"
    )
    print()
    header = (
        f"{'metric':<{_M}}{'analytics-python':>{_A}}{'ours':>{_O}}"
        f"{'ratio':>9}{'(range)':>14}{'target':>8}{'met':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in build_rows(results):
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.1f}{TIMES}"
        spread = (
            "" if row["ratio_min"] is None else f"({row['ratio_min']:.1f}-{row['ratio_max']:.1f})"
        )
        target = "" if row["target"] is None else f"≥{row['target']:g}{TIMES}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(
            f"{row['metric']:<{_M}}{_cell(row['analytics-python'], row['_fmt']):>{_A}}"
            f"{_cell(row['ours'], row['_fmt']):>{_O}}{ratio:>9}{spread:>14}{target:>8}{met:>5}"
        )
    ap, ours, nogzip = (results.get(k, []) for k in ("ap", "ours", "ours_nogzip"))
    for label, idle, cpu in (
        ("spool on minus in memory, µs/call", False, False),
        ("  the same, sender idle", True, False),
        ("  the same, process CPU µs per event", False, True),
        ("  the same, process CPU, sender idle", True, True),
    ):
        extra = spool_extra_us(results, idle, cpu)
        if extra is not None:
            verdict = "yes" if extra <= SPOOL_EXTRA_US else "NO"
            print(
                f"{label:<{_M}}{'':>{_A}}{extra:>{_O}.2f}"
                f"{'':>23}{'≤' + format(SPOOL_EXTRA_US, 'g') + 'µs':>8}{verdict:>5}"
            )
    print("-" * len(header))
    extras: Sequence[tuple[str, Callable[[list[dict[str, Any]]], str]]] = (
        ("delivered/enqueued, all rounds (receiver)", _count_cell),
        ("refused by track() (drops), all rounds", _sum_cell("refused")),
        ("flush finished in time", _flushed_cell),
        ("POST requests per run (body)", _requests_cell),
        ("receiver busy, worst run (of one core)", _busy_cell),
    )
    spool = results.get("ours_spool", [])
    for label, cell in extras:
        print(
            f"{label:<{_M}}{cell(ap):>{_A}}{cell(ours):>{_O}}   ours gzip=False: {cell(nogzip)}"
            f"; spool on: {cell(spool)}"
        )
    print(
        f"ratio: how many times better ours is (>1{TIMES}: ours better), from the medians; "
        "(range): the ratio's lowest and highest over the rounds.\n"
        "CPU: process time of the client's process, background threads included; the "
        "receiver runs in its own process."
    )
    for key, runs in results.items():
        for index, result in enumerate(runs, start=1):
            where = f"! {key} round {index}"
            if "error" in result:
                print(f"{where}: {result['error']}")
            elif result.get("flushed") is False:
                print(
                    f"{where}: flush did not finish within {result['flush_timeout_s']:.0f}s; "
                    f"{result['delivered']:,} of {result['events']:,} delivered"
                )
            elif result.get("phase") == "delivery" and result["delivered"] != result["events"]:
                print(f"{where}: {result['delivered']:,} of {result['events']:,} delivered")
            elif result.get("refused"):
                print(f"{where}: track() refused {result['refused']:,} event(s)")


def run_parent(args: argparse.Namespace) -> None:
    info = {
        "python": platform.python_version(),
        "ours_version": _version("segment-web"),
        "ap_version": _version("segment-analytics-python"),
        "events": args.events,
        "chunk": args.chunk,
        "rss_events": args.rss_events,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    receiver, port, hold_port = start_receiver()
    try:
        results = run_children(args, port, hold_port)
    finally:
        receiver.kill()
        receiver.wait()
    if args.json:
        rows = [{k: v for k, v in row.items() if k != "_fmt"} for row in build_rows(results)]
        payload = {
            "info": info,
            "targets": {**TARGETS, "spool_extra_us": SPOOL_EXTRA_US},
            "rows": rows,
            "spool_extra_us": spool_extra_us(results),
            "spool_extra_us_sender_idle": spool_extra_us(results, idle=True),
            "spool_extra_cpu_us": spool_extra_us(results, cpu=True),
            "spool_extra_cpu_us_sender_idle": spool_extra_us(results, idle=True, cpu=True),
            "runs": results,
        }
        print(json.dumps(payload, indent=2))
    else:
        print_table(results, info)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000, help="track() calls per run")
    parser.add_argument("--chunk", type=int, default=1_000, help="calls per timed group")
    parser.add_argument("--rss-events", type=int, default=10_000, help="events queued for RSS")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every run (median)")
    parser.add_argument("--flush-timeout", type=float, default=120.0, help="seconds per flush")
    parser.add_argument("--budget", type=float, default=230.0, help="seconds for all runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # Internal: the receiver and the per-library child runs.
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("delivery", "rss"), help=argparse.SUPPRESS)
    parser.add_argument("--gzip", choices=("default", "on", "off"), default="default",
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--spool", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.events, args.chunk, args.rss_events, args.repeat) < 1:
        parser.error("--events, --chunk, --rss-events and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.receiver:
        run_receiver()
    elif args.library:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
