"""Benchmark: requests/s of a hello-world Starlette app under uvicorn, with and without Segment.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/asgi_overhead.py              # 5 rounds of 2 x 6 s
    .venv/bin/python benchmarks/asgi_overhead.py --rounds 3 --seconds 4 --json

It starts a fast loopback receiver (the one of ``benchmarks/core.py``) and two
uvicorn servers on free loopback ports with the same settings (one worker, h11,
no access log): the same app, one wrapped in ``SegmentMiddleware`` sending to the
receiver. Rounds alternate which server is loaded first, with the project's load
generator (``benchmarks/loadgen.py``); the figures are medians over rounds. Every
request is a new visitor (the load generator keeps no cookies), so each one gets
an anonymous id, a ``Set-Cookie`` and a page call: the adapter's busiest case.
At the end the Segment server is stopped with SIGTERM and every page call it owes
(one per request it answered) must have reached the receiver, delivered by the
flush at lifespan shutdown. Bounded: about a minute and a half with the defaults,
two minutes at most.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


# -- the app uvicorn serves (``benchmarks.asgi_overhead:make_app``, ``--factory``) -------


def make_app() -> Any:
    """The hello-world app; with ``$BENCH_VARIANT=segment``, wrapped in the middleware."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route(PAGE, hello, name="hello"), Route(PROBE, healthz)])
    if os.environ.get("BENCH_VARIANT") != "segment":
        return app
    from segment_asgi import SegmentMiddleware

    options = json.loads(os.environ.get("BENCH_SEGMENT_OPTIONS") or "{}")
    return SegmentMiddleware(
        app, write_key=WRITE_KEY, host=os.environ["BENCH_COLLECTOR"], **options
    )


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
        stop(process)


def free_port() -> int:
    """A loopback port nothing listens on (uvicorn cannot report the one ``--port 0`` got)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def uvicorn(
    variant: str, collector_url: str, options: dict[str, Any]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One uvicorn worker on a free port; yields its URL and process."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "benchmarks.asgi_overhead:make_app",
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=1",
        "--http=h11",
        "--loop=asyncio",
        "--lifespan=on",
        "--no-access-log",
        "--log-level=warning",
        "--backlog=2048",
    ]
    env = {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_COLLECTOR": collector_url,
        "BENCH_SEGMENT_OPTIONS": json.dumps(options),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + PROBE, process)
        yield url, process
    finally:
        stop(process)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            with urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)  # polling a starting server, bounded by the deadline


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM (uvicorn shuts the app down: lifespan flush), then wait, then kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the measurement ------------------------------------------------------------------


def load(
    url: str, seconds: float, connections: int, server: psutil.Process
) -> tuple[float, int, int, float]:
    """Requests/s, requests answered, errors, and the server's CPU µs per request."""
    before = server.cpu_times()
    result = asyncio.run(
        run_load(url + PAGE, connections=connections, requests=10_000_000, duration=seconds)
    )
    after = server.cpu_times()
    cpu = (after.user + after.system) - (before.user + before.system)
    per_request = cpu / result.requests * 1e6 if result.requests else 0.0
    return result.per_second, result.requests, result.errors, per_request


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"plain": [], "segment": []}
    cpu: dict[str, list[float]] = {"plain": [], "segment": []}
    served = {"plain": 0, "segment": 0}
    errors = 0
    started = time.monotonic()
    with ExitStack() as stack:
        collector_url, receiver_port = stack.enter_context(receiver())
        urls: dict[str, str] = {}
        processes: dict[str, subprocess.Popen[bytes]] = {}
        servers: dict[str, psutil.Process] = {}
        for variant in ("plain", "segment"):
            urls[variant], processes[variant] = stack.enter_context(
                uvicorn(variant, collector_url, args.option)
            )
            servers[variant] = psutil.Process(processes[variant].pid)
        for variant in ("plain", "segment"):  # warm-up: imports, first connections
            _, count, failed, _ = load(
                urls[variant], args.warmup, args.connections, servers[variant]
            )
            served[variant] += count
            errors += failed
        for round_index in range(args.rounds):
            order = ("plain", "segment") if round_index % 2 == 0 else ("segment", "plain")
            for variant in order:
                rate, count, failed, per_request = load(
                    urls[variant], args.seconds, args.connections, servers[variant]
                )
                rates[variant].append(rate)
                cpu[variant].append(per_request)
                served[variant] += count
                errors += failed
            if time.monotonic() - started > HARD_LIMIT_SECONDS - 2 * args.seconds - 20:
                break  # stay within the bound on a slow machine
        stop(processes["segment"])  # lifespan shutdown: the middleware flushes the client
        delivered = int(receiver_report(receiver_port)["messages"])
    plain = statistics.median(rates["plain"])
    with_segment = statistics.median(rates["segment"])
    cpu_plain = statistics.median(cpu["plain"])
    cpu_segment = statistics.median(cpu["segment"])
    return {
        "rounds": len(rates["plain"]),
        "seconds_per_run": args.seconds,
        "connections": args.connections,
        "without_rps": rates["plain"],
        "with_rps": rates["segment"],
        "without_median": plain,
        "with_median": with_segment,
        "ratio": with_segment / plain if plain else 0.0,
        "round_ratios": [w / p for w, p in zip(rates["segment"], rates["plain"], strict=True)],
        "without_cpu_us": cpu["plain"],
        "with_cpu_us": cpu["segment"],
        "cpu_ratio": cpu_plain / cpu_segment if cpu_segment else 0.0,
        "load_average": os.getloadavg()[0],
        "segment_requests": served["segment"],
        "pages_delivered": delivered,
        "errors": errors,
        "elapsed": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="per run (default 6)")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--option",
        metavar="NAME=JSON",
        action="append",
        default=[],
        help="an option for SegmentMiddleware, e.g. --option flush_at=100 (repeatable)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.option = {
        name: json.loads(value) for name, _, value in (o.partition("=") for o in args.option)
    }
    result = measure(args)
    if args.json:
        print(json.dumps(result))
    else:
        spread = ", ".join(f"{r:.3f}" for r in result["round_ratios"])
        cpu_plain = statistics.median(result["without_cpu_us"])
        cpu_segment = statistics.median(result["with_cpu_us"])
        print(
            f"without Segment: {result['without_median']:8.0f} requests/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in result['without_rps'])})\n"
            f"with Segment:    {result['with_median']:8.0f} requests/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in result['with_rps'])})\n"
            f"ratio (medians): {result['ratio']:.3f}  (target >= {TARGET_RATIO}); "
            f"per round: {spread}\n"
            f"server CPU per request: without {cpu_plain:.0f} µs, with {cpu_segment:.0f} µs; "
            f"ratio {result['cpu_ratio']:.3f} (what a CPU-bound worker keeps)\n"
            f"load average at the end: {result['load_average']:.2f} on {os.cpu_count()} CPUs\n"
            f"page calls delivered: {result['pages_delivered']} of "
            f"{result['segment_requests']} requests; load errors: {result['errors']}; "
            f"{result['elapsed']:.0f} s"
        )
    if result["pages_delivered"] != result["segment_requests"]:
        sys.exit("not every page call reached the receiver")


if __name__ == "__main__":
    main()
