"""The measurement shared by the adapter benchmarks (``*_overhead.py``).

Each benchmark starts the fast loopback receiver of ``benchmarks/core.py`` and two
servers of the same app on free loopback ports, ``"plain"`` and ``"segment"``,
with a launcher of its own (``gunicorn`` here for Flask and Django, uvicorn in
``asgi_overhead.py``). Rounds alternate which server is loaded first, with the
project's load generator (``benchmarks/loadgen.py``), sampling the CPU time of the
server process that answers; the figures are medians over rounds. At the end the
Segment server is stopped gracefully and every page call it owes (one per request
it answered) must have reached the receiver. Bounded by ``HARD_LIMIT_SECONDS``.
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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
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


# -- processes ------------------------------------------------------------------------


class Server(NamedTuple):
    url: str
    #: What ``stop`` stops (gracefully: that is when the Segment app delivers).
    process: subprocess.Popen[Any]
    #: The process that answers requests, whose CPU time ``load`` samples.
    worker: psutil.Process


#: ``launch(variant, collector_url, options)``: a server of ``variant`` ("plain" or
#: "segment") sending to ``collector_url`` with the Segment ``options``.
Launcher = Callable[[str, str, dict[str, Any]], AbstractContextManager[Server]]


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
        stop(process)


def server_env(variant: str, collector_url: str, options: dict[str, Any]) -> dict[str, str]:
    """The environment the served app reads: receiver, Segment options (JSON), variant."""
    return {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_COLLECTOR": collector_url,
        "BENCH_SEGMENT_OPTIONS": json.dumps(options),
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def gunicorn(
    factory: str, variant: str, collector_url: str, options: dict[str, Any]
) -> Iterator[Server]:
    """``gunicorn -w 1 --threads 1`` (sync) on a free port, serving ``factory(variant)``.

    A ``Launcher`` once ``factory`` is bound (``functools.partial(gunicorn, factory)``);
    the app finds the receiver and the options in ``server_env``'s variables.
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
    env = server_env(variant, collector_url, options)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        url = _wait_listening(process)
        wait_ready(url + PROBE, process)
        yield Server(url, process, _worker(process))
    finally:
        stop(process)


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


def _worker(server: subprocess.Popen[str]) -> psutil.Process:
    """gunicorn's one worker process (the arbiter's child)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        children = psutil.Process(server.pid).children()
        if children or time.monotonic() > deadline:
            return children[0]
        time.sleep(0.05)  # the arbiter is still forking it, bounded by the deadline


def wait_ready(url: str, process: subprocess.Popen[Any]) -> None:
    """Poll ``url`` until it answers 200; fail if ``process`` exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)  # polling a starting server, bounded by the deadline


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then wait, then kill.

    SIGTERM is a graceful stop: gunicorn's workers run ``atexit``, uvicorn shuts the
    app down (lifespan); either way the Segment app delivers what it holds.
    """
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
    #: CPU seconds the server's worker (request handling and Segment's sender) spent.
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


def measure(args: argparse.Namespace, launch: Launcher) -> dict[str, Any]:
    """Warm-up, then ``args.rounds`` rounds of both servers; the figures as a dict."""
    runs: dict[str, list[Run]] = {"plain": [], "segment": []}
    served = {"plain": 0, "segment": 0}
    errors = 0
    started = time.monotonic()
    with ExitStack() as stack:
        collector_url, receiver_port = stack.enter_context(receiver())
        servers = {
            variant: stack.enter_context(launch(variant, collector_url, args.option))
            for variant in ("plain", "segment")
        }
        for variant, server in servers.items():  # warm-up: imports, first connections
            run = load(server.url, server.worker, args.warmup, args.connections)
            served[variant] += run.requests
            errors += run.errors
        for round_index in range(args.rounds):
            order = ("plain", "segment") if round_index % 2 == 0 else ("segment", "plain")
            for variant in order:
                server = servers[variant]
                run = load(server.url, server.worker, args.seconds, args.connections)
                runs[variant].append(run)
                served[variant] += run.requests
                errors += run.errors
            if time.monotonic() - started > HARD_LIMIT_SECONDS - 2 * args.seconds - 20:
                break  # stay within the bound on a slow machine
        stop(servers["segment"].process)  # graceful: the Segment app delivers what it holds
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
        "without_cpu_us": [r.cpu_per_request_us for r in runs["plain"]],
        "with_cpu_us": [r.cpu_per_request_us for r in runs["segment"]],
        "without_cpu_us_per_request": cpu_plain,
        "with_cpu_us_per_request": cpu_segment,
        "cpu_ratio": cpu_plain / cpu_segment if cpu_segment else 0.0,
        "load_average": os.getloadavg()[0],
        "segment_requests": served["segment"],
        "pages_delivered": delivered,
        "errors": errors,
        "elapsed": time.monotonic() - started,
    }


# -- command line and report ----------------------------------------------------------


def parse_args(doc: str, option_help: str, connections: int = 4) -> argparse.Namespace:
    """The benchmarks' command line; ``doc`` is the module's docstring."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="per run (default 6)")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=connections)
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


def worker_cpu_lines(result: dict[str, Any]) -> str:
    """The report's CPU line for a gunicorn worker."""
    cpu_without = result["without_cpu_us_per_request"]
    cpu_with = result["with_cpu_us_per_request"]
    return (
        f"worker CPU per request: {cpu_without:.0f} us without, {cpu_with:.0f} us with "
        f"Segment (+{cpu_with - cpu_without:.0f} us)"
    )


def report(
    result: dict[str, Any],
    as_json: bool,
    cpu_lines: Callable[[dict[str, Any]], str] = worker_cpu_lines,
) -> None:
    """Print ``measure``'s result; exit with an error if a page call was not delivered."""
    if as_json:
        print(json.dumps(result))
    else:
        spread = ", ".join(f"{r:.3f}" for r in result["round_ratios"])
        print(
            f"without Segment: {result['without_median']:8.0f} requests/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in result['without_rps'])})\n"
            f"with Segment:    {result['with_median']:8.0f} requests/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in result['with_rps'])})\n"
            f"ratio (medians): {result['ratio']:.3f}  (target >= {TARGET_RATIO}); "
            f"per round: {spread}\n"
            f"{cpu_lines(result)}\n"
            f"page calls delivered: {result['pages_delivered']} of "
            f"{result['segment_requests']} requests; load errors: {result['errors']}; "
            f"{result['elapsed']:.0f} s"
        )
    if result["pages_delivered"] != result["segment_requests"]:
        sys.exit("not every page call reached the receiver")
