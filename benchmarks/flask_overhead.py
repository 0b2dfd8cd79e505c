"""Benchmark: requests/s of a hello-world Flask app under gunicorn, with and without Segment.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/flask_overhead.py              # 5 rounds of 2 x 6 s
    .venv/bin/python benchmarks/flask_overhead.py --rounds 3 --seconds 4 --json

It starts a fast loopback receiver (the one of ``benchmarks/core.py``) and two
gunicorn servers on free loopback ports, with the same settings (one sync worker,
one thread): the same app, one with ``SegmentFlask`` sending to the receiver.
Rounds alternate which server is loaded first, with the project's load generator
(``benchmarks/loadgen.py``); the figures are medians over rounds. At the end the
servers are stopped gracefully and every page call the Segment app owes (one per
request it answered) must have reached the receiver. Besides requests/s it prints
the gunicorn worker's CPU time per request (request thread and Segment's sender
thread), steadier than requests/s on a shared machine. ``--option NAME=JSON``
passes an option to ``SegmentFlask`` (``--option flush_at=500``, ``--option
send=false`` to leave delivery out). Bounded: about 65 s with the defaults, two
minutes at most.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.core import receiver_report, start_receiver  # noqa: E402
from benchmarks.loadgen import run_load  # noqa: E402

TARGET_RATIO = 0.95
HARD_LIMIT_SECONDS = 120.0
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 15.0
WRITE_KEY = "bench-write-key"
#: The page the load generator asks for; the readiness probe uses an excluded one.
PAGE, PROBE = "/", "/healthz"
#: gunicorn serves ``f"{FLASK_APP}({variant!r})"``; other frameworks pass their own factory.
FLASK_APP = "benchmarks.flask_overhead:make_app"


# -- the app gunicorn serves (``benchmarks.flask_overhead:make_app('segment')``) --------


def make_app(variant: str = "plain") -> Any:
    """The hello-world app; ``"segment"`` adds the extension, sending to ``$BENCH_COLLECTOR``."""
    from flask import Flask

    app = Flask("hello")

    @app.get(PAGE)
    def hello() -> str:
        return "Hello, World!"

    @app.get(PROBE)
    def healthz() -> str:
        return "ok"

    if variant == "segment":
        from segment_flask import SegmentFlask

        app.config.update(SEGMENT_WRITE_KEY=WRITE_KEY, SEGMENT_HOST=os.environ["BENCH_COLLECTOR"])
        SegmentFlask(app, **json.loads(os.environ.get("BENCH_SEGMENT_OPTIONS") or "{}"))
    return app


# -- processes ------------------------------------------------------------------------


@contextmanager
def receiver() -> Iterator[tuple[str, int]]:
    """The fast loopback receiver of ``benchmarks/core.py`` in a subprocess.

    Not the collector: on a 2-core machine the receiver's CPU is taken from the
    app under test, and Segment's servers are not on the app's machine.
    """
    process, port, _ = start_receiver()
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        _stop(process)


@contextmanager
def gunicorn(
    variant: str, collector_url: str, options: dict[str, Any], factory: str = FLASK_APP
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``gunicorn -w 1 --threads 1`` (sync) on a free port; yields its URL and process.

    It serves ``factory(variant)``, which finds the receiver in ``$BENCH_COLLECTOR``
    and the Segment options (JSON) in ``$BENCH_SEGMENT_OPTIONS``.
    """
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers=1",
        "--threads=1",
        "--worker-class=sync",
        "--bind=127.0.0.1:0",
        "--backlog=2048",
        "--log-level=info",
        "--graceful-timeout=10",
        f"{factory}({variant!r})",
    ]
    env = {
        **os.environ,
        "BENCH_COLLECTOR": collector_url,
        "BENCH_SEGMENT_OPTIONS": json.dumps(options),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        url = _wait_listening(process)
        _wait_ready(url + PROBE)
        yield url, process
    finally:
        _stop(process)


def _wait_listening(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
        if match:
            # Keep reading its log so that a full pipe never blocks the server.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return match[1]
    raise RuntimeError("gunicorn did not start")


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)  # polling a starting server, bounded by the deadline


def _stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM (a graceful stop: gunicorn's workers run atexit), then wait, then kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the measurement ------------------------------------------------------------------


@dataclass
class Run:
    per_second: float
    requests: int
    errors: int
    #: CPU seconds the gunicorn worker (request thread and Segment's sender) spent.
    worker_cpu: float

    @property
    def cpu_per_request_us(self) -> float:
        return self.worker_cpu / self.requests * 1e6 if self.requests else 0.0


def load(url: str, worker: psutil.Process, seconds: float, connections: int) -> Run:
    """One bounded run of the load generator against ``url``."""
    before = worker.cpu_times()
    result = asyncio.run(
        run_load(url + PAGE, connections=connections, requests=10_000_000, duration=seconds)
    )
    after = worker.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return Run(result.per_second, result.requests, result.errors, cpu)


def _worker(server: subprocess.Popen[str]) -> psutil.Process:
    """gunicorn's one worker process (the arbiter's child)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        children = psutil.Process(server.pid).children()
        if children or time.monotonic() > deadline:
            return children[0]
        time.sleep(0.05)  # the arbiter is still forking it, bounded by the deadline


def measure(args: argparse.Namespace, factory: str = FLASK_APP) -> dict[str, Any]:
    runs: dict[str, list[Run]] = {"plain": [], "segment": []}
    served = {"plain": 0, "segment": 0}
    errors = 0
    started = time.monotonic()
    with ExitStack() as stack:
        collector_url, receiver_port = stack.enter_context(receiver())
        urls: dict[str, str] = {}
        servers: dict[str, subprocess.Popen[str]] = {}
        for variant in ("plain", "segment"):
            urls[variant], servers[variant] = stack.enter_context(
                gunicorn(variant, collector_url, args.option, factory)
            )
        workers = {variant: _worker(server) for variant, server in servers.items()}
        for variant in ("plain", "segment"):  # warm-up: imports, first connections
            run = load(urls[variant], workers[variant], args.warmup, args.connections)
            served[variant] += run.requests
            errors += run.errors
        for round_index in range(args.rounds):
            order = ("plain", "segment") if round_index % 2 == 0 else ("segment", "plain")
            for variant in order:
                run = load(urls[variant], workers[variant], args.seconds, args.connections)
                runs[variant].append(run)
                served[variant] += run.requests
                errors += run.errors
            if time.monotonic() - started > HARD_LIMIT_SECONDS - 2 * args.seconds - 20:
                break  # stay within the bound on a slow machine
        _stop(servers["segment"])  # graceful: the worker's atexit delivers what it holds
        delivered = int(receiver_report(receiver_port)["messages"])
    plain = statistics.median(r.per_second for r in runs["plain"])
    with_segment = statistics.median(r.per_second for r in runs["segment"])
    cpu_plain = statistics.median(r.cpu_per_request_us for r in runs["plain"])
    cpu_segment = statistics.median(r.cpu_per_request_us for r in runs["segment"])
    return {
        "rounds": len(runs["plain"]),
        "seconds_per_run": args.seconds,
        "connections": args.connections,
        "options": args.option,
        "without_rps": [r.per_second for r in runs["plain"]],
        "with_rps": [r.per_second for r in runs["segment"]],
        "without_median": plain,
        "with_median": with_segment,
        "ratio": with_segment / plain if plain else 0.0,
        "round_ratios": [
            w.per_second / p.per_second for w, p in zip(runs["segment"], runs["plain"], strict=True)
        ],
        "without_cpu_us_per_request": cpu_plain,
        "with_cpu_us_per_request": cpu_segment,
        "segment_requests": served["segment"],
        "pages_delivered": delivered,
        "errors": errors,
        "elapsed": time.monotonic() - started,
    }


def parse_args(doc: str, option_help: str) -> argparse.Namespace:
    """The command line shared by the gunicorn benchmarks; ``doc`` is the module's docstring."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="per run (default 6)")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--option",
        metavar="NAME=JSON",
        action="append",
        default=[],
        help=option_help,
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.option = {
        name: json.loads(value) for name, _, value in (o.partition("=") for o in args.option)
    }
    return args


def report(result: dict[str, Any], as_json: bool) -> None:
    """Print ``measure``'s result; exit with an error if a page call was not delivered."""
    if as_json:
        print(json.dumps(result))
    else:
        spread = ", ".join(f"{r:.3f}" for r in result["round_ratios"])
        cpu_without = result["without_cpu_us_per_request"]
        cpu_with = result["with_cpu_us_per_request"]
        print(
            f"without Segment: {result['without_median']:8.0f} requests/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in result['without_rps'])})\n"
            f"with Segment:    {result['with_median']:8.0f} requests/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in result['with_rps'])})\n"
            f"ratio (medians): {result['ratio']:.3f}  (target >= {TARGET_RATIO}); "
            f"per round: {spread}\n"
            f"worker CPU per request: {cpu_without:.0f} us without, {cpu_with:.0f} us with "
            f"Segment (+{cpu_with - cpu_without:.0f} us)\n"
            f"page calls delivered: {result['pages_delivered']} of "
            f"{result['segment_requests']} requests; load errors: {result['errors']}; "
            f"{result['elapsed']:.0f} s"
        )
    if result["pages_delivered"] != result["segment_requests"]:
        sys.exit("not every page call reached the receiver")


def main() -> None:
    args = parse_args(
        __doc__, "an option for SegmentFlask, e.g. --option flush_at=100 (repeatable)"
    )
    report(measure(args), args.json)


if __name__ == "__main__":
    main()
