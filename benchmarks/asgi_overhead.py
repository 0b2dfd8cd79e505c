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

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._overhead import (  # noqa: E402
    PAGE,
    PROBE,
    WRITE_KEY,
    Server,
    measure,
    parse_args,
    report,
    server_env,
    stop,
    wait_ready,
)

# -- the app uvicorn serves (``benchmarks.asgi_overhead:make_app``, ``--factory``) -------


def make_app() -> Any:
    """The hello-world app; with ``$BENCH_VARIANT=segment``, wrapped in the middleware."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> HTMLResponse:
        return HTMLResponse("<p>Hello, World!</p>")

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


# -- the server -----------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on (uvicorn cannot report the one ``--port 0`` got)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def uvicorn(variant: str, collector_url: str, options: dict[str, Any]) -> Iterator[Server]:
    """One uvicorn worker on a free port, in its own process (the one whose CPU counts).

    SIGTERM at the end shuts the app down: the middleware flushes at lifespan shutdown.
    """
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
    env = server_env(variant, collector_url, options)
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + PROBE, process)
        yield Server(url, process, psutil.Process(process.pid))
    finally:
        stop(process)


def server_cpu_lines(result: dict[str, Any]) -> str:
    """The report's CPU lines: per request, their ratio, and the machine's load."""
    cpu_plain = result["without_cpu_us_per_request"]
    cpu_segment = result["with_cpu_us_per_request"]
    return (
        f"server CPU per request: without {cpu_plain:.0f} µs, with {cpu_segment:.0f} µs; "
        f"ratio {result['cpu_ratio']:.3f} (what a CPU-bound worker keeps)\n"
        f"load average at the end: {result['load_average']:.2f} on {os.cpu_count()} CPUs"
    )


def main() -> None:
    args = parse_args(
        __doc__,
        "an option for SegmentMiddleware, e.g. --option flush_at=100 (repeatable)",
        connections=8,
    )
    report(measure(args, uvicorn), args.json, server_cpu_lines)


if __name__ == "__main__":
    main()
