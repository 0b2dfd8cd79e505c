"""Where a served app's worker spends its CPU under load: py-spy, grouped by part.

Run from the repository root, after ``pip install -e '.[bench]'`` (py-spy reads
another process's memory: root, or ``ptrace`` allowed)::

    .venv/bin/python benchmarks/profile_worker.py --framework flask             # segment-web
    .venv/bin/python benchmarks/profile_worker.py --framework django --seconds 20 --raw out.txt

It serves one app of ``benchmarks/adapters.py`` (default: with segment-web),
loads it with the load generator while ``py-spy record --threads`` samples the
worker process (``--rate`` per second), and reads the worker's CPU time per
thread from ``/proc`` over the same window. Each sample goes to one part, by
the innermost frame that names one (the adapter's call into Werkzeug counts as
the adapter). A part's share of the samples, times the CPU per request, is its
cost per request.

py-spy stops the worker for each sample by default. ``--nonblocking`` reads the
stacks while the interpreter runs, which perturbs the worker less, but keeps only
the samples whose stack held still while read, which it does in the kernel: on
a busy worker most samples are then lost, and those kept sit in the server's
system calls. Stopped, a worker is still caught where it enters the kernel more
often than elsewhere, so a system call's frame gets more samples than its cost.
The report says how many samples were read of those due.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._overhead import load, stop_all, wait_started  # noqa: E402
from benchmarks.adapters import CONNECTIONS, FRAMEWORKS, start  # noqa: E402
from benchmarks.core import start_receiver  # noqa: E402
from benchmarks.loadgen import run_load  # noqa: E402

#: (part, what the frame's file path contains), innermost match wins; checked in order.
REQUEST_PARTS: Sequence[tuple[str, str]] = (
    ("encoding (orjson)", "segment_core/encoding.py"),
    ("enqueue (buffer)", "segment_core/worker.py"),
    ("message building", "segment_core/normalize.py"),
    ("message building", "segment_core/client.py"),
    ("message building", "segment_core/scope.py"),
    ("web rules (ids, context, page)", "segment_core/web/"),
    ("adapter", "segment_flask/"),
    ("adapter", "segment_django/"),
    ("adapter", "segment_asgi/"),
)
SENDER_PARTS: Sequence[tuple[str, str]] = (
    ("sender: gzip", "gzip.py"),
    ("sender: batch body", "segment_core/batching.py"),
    ("sender: HTTP (urllib3, http.client, socket)", "urllib3/"),
    ("sender: HTTP (urllib3, http.client, socket)", "http/client.py"),
    ("sender: HTTP (urllib3, http.client, socket)", "socket.py"),
    ("sender: delivery bookkeeping", "segment_core/delivery.py"),
    ("sender: delivery bookkeeping", "segment_core/signals.py"),
    ("sender: delivery bookkeeping", "segment_core/stats.py"),
    ("sender: wake-up and batch taking", "segment_core/worker.py"),
)
SERVER = "framework and server (the bare app's work)"


#: Adapter functions that call the app (or the server's ``send``) below them: a
#: sample whose innermost adapter frame is one of these, and not its leaf, is the
#: app's or the server's work.
PASS_THROUGH = (
    "SegmentMiddleware.__call__",
    "SegmentMiddleware.__acall__",
    "send_with_analytics",
)


def part_of(stack: str) -> str:
    """The part one collapsed stack (``thread (id): name;frame;frame``) belongs to."""
    thread, _, frames_text = stack.partition(";")
    frames = frames_text.split(";")
    sender = "segment-sender" in thread
    rules = SENDER_PARTS if sender else REQUEST_PARTS
    for index in range(len(frames) - 1, -1, -1):
        frame = frames[index]
        for part, marker in rules:
            if marker in frame:
                calls_below = index < len(frames) - 1
                function = frame.partition(" (")[0]
                if part == "adapter" and calls_below and function.endswith(PASS_THROUGH):
                    return SERVER
                return part
    if sender:
        return "sender: other"
    if "thread (" in thread and "MainThread" not in thread:
        return f"other thread: {thread.partition(': ')[2] or thread}"
    return SERVER


#: Leaf frames of a thread that waits (py-spy counts some waits with a timeout as busy).
WAITS = ("Condition.wait (", "Event.wait (", "select (selectors", "poll (selectors")


def read_samples(path: Path) -> dict[str, Counter[str]]:
    """Per thread id: how many samples each part got (waits left out)."""
    threads: dict[str, Counter[str]] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or stack.rpartition(";")[2].startswith(WAITS):
            continue
        tid = stack[len("thread (") :].partition(")")[0]
        threads.setdefault(tid, Counter())[part_of(stack)] += int(count)
    return threads


def sample_count(path: Path) -> int:
    """How many samples py-spy wrote (waits included)."""
    read = 0
    for line in path.read_text().splitlines():
        count = line.rpartition(" ")[2]
        if count.isdigit():
            read += int(count)
    return read


def thread_names(path: Path) -> dict[str, str]:
    """Thread id -> name, from the ``thread (id): name`` heads of py-spy's stacks."""
    names: dict[str, str] = {}
    for line in path.read_text().splitlines():
        head = (
            line.partition(";")[0].rpartition(" ")[0] if ";" not in line else line.partition(";")[0]
        )
        if head.startswith("thread ("):
            tid, _, name = head[len("thread (") :].partition("): ")
            names[tid] = name
    return names


def thread_times(worker: Any) -> dict[str, tuple[float, float, int]]:
    """Per thread id of ``worker``: user and system CPU seconds, context switches."""
    times = {}
    for thread in worker.threads():
        switches = 0
        try:
            status = Path(f"/proc/{worker.pid}/task/{thread.id}/status").read_text()
            for line in status.splitlines():
                if "ctxt_switches" in line:  # voluntary and involuntary
                    switches += int(line.split()[-1])
        except OSError:
            pass
        times[str(thread.id)] = (thread.user_time, thread.system_time, switches)
    return times


def profile(args: argparse.Namespace) -> None:
    receiver, port, _ = start_receiver()
    server = start(args.framework, args.variant, f"http://127.0.0.1:{port}")
    try:
        wait_started(server)
        load(server, 2.0, CONNECTIONS[args.framework])  # warm-up
        raw = Path(args.raw or tempfile.mkstemp(suffix=".txt")[1])
        command = [
            str(Path(sys.executable).parent / "py-spy"), "record",
            "--pid", str(server.worker.pid), "--rate", str(args.rate),
            "--duration", str(int(args.seconds)), "--format", "raw", "--threads",
            "--output", str(raw),
        ]  # fmt: skip
        if args.nonblocking:
            command.append("--nonblocking")
        if args.native:
            command.append("--native")
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches
        before = thread_times(server.worker)
        result = asyncio.run(
            run_load(
                server.url + "/",
                connections=CONNECTIONS[args.framework],
                requests=10**9,
                duration=args.seconds - 2.0,
            )
        )
        after = thread_times(server.worker)
        _, errors = spy.communicate(timeout=args.seconds + 60)
    finally:
        stop_all([server])
        receiver.kill()
        receiver.wait()
    if spy.returncode:
        sys.exit(f"py-spy failed: {errors.decode()[-1000:]}")
    report(args, result.requests, result.per_second, raw, before, after)


def report(
    args: argparse.Namespace,
    requests: int,
    per_second: float,
    raw: Path,
    before: dict[str, tuple[float, float, int]],
    after: dict[str, tuple[float, float, int]],
) -> None:
    """Each thread's CPU per request (``/proc``), split by its samples' parts."""
    us = 1e6 / requests
    names = thread_names(raw)
    samples = read_samples(raw)
    due = int(args.rate * int(args.seconds))
    mode = "non-blocking" if args.nonblocking else "the worker stopped for each"
    print(
        f"{args.framework} with {args.variant}: {per_second:.0f} req/s while sampled "
        f"(py-spy {args.rate}/s, {mode}: {sample_count(raw):,} samples of {due:,} due); "
        "worker CPU per request from /proc:"
    )
    parts: Counter[str] = Counter()
    total = 0.0
    for tid, (user, system, switches) in sorted(after.items()):
        user0, system0, switches0 = before.get(tid, (0.0, 0.0, 0))
        spent = ((user - user0) + (system - system0)) * us
        if spent <= 0:
            continue
        total += spent
        print(
            f"  {names.get(tid, 'thread ' + tid):<40}{spent:7.0f} µs "
            f"(user {(user - user0) * us:.0f}, system {(system - system0) * us:.0f}; "
            f"{(switches - switches0) / requests:.2f} context switches)"
        )
        counts = samples.get(tid, Counter())
        held = sum(counts.values())
        for part, count in counts.items():
            parts[part] += spent * count / held
    print(f"  {'all threads':<40}{total:7.0f} µs")
    print("by part (each thread's CPU split by its samples):")
    for part, cost in parts.most_common():
        print(f"  {part:<48}{cost:7.1f} µs")
    print(f"raw samples: {raw}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--framework", choices=FRAMEWORKS, default="flask")
    parser.add_argument("--variant", default="segment")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--native", action="store_true", help="C frames too (slower)")
    parser.add_argument("--raw", help="keep py-spy's collapsed stacks in this file")
    parser.add_argument(
        "--nonblocking", action="store_true", help="sample without stopping the worker"
    )
    profile(parser.parse_args(argv))


if __name__ == "__main__":
    main()
