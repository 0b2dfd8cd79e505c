"""The request thread's own cost: a served app called in a warm loop, without a server.

Run from the repository root, after ``pip install -e '.[bench]'``::

    .venv/bin/python benchmarks/request_path.py                       # every framework
    .venv/bin/python benchmarks/request_path.py --framework django --option page_calls=false
    .venv/bin/python benchmarks/request_path.py --variant segment --variant floor
    .venv/bin/python benchmarks/request_path.py --browser            # a browser's headers
    .venv/bin/python benchmarks/request_path.py --evict 8 --requests 3000   # caches cold
    BENCH_PYTHONPATH=/tmp/old .venv/bin/python benchmarks/request_path.py   # another checkout

Calls the WSGI (Django, Flask) or ASGI (Starlette) application of
``benchmarks/adapters.py`` directly, ``--requests`` times, with the request the
load generator sends (a new visitor each time; ``--browser``: with the headers of
``loadgen.py --browser``), and reports the process CPU per
request, bare and with segment-web (or the ``--variant`` of ``adapters.py``
given: ``floor``, ``minimal``), in alternating chunks. No sockets, no other
process: what is left is the framework's and the integration's Python, the
floor against which ``adapters.py``'s figures (which add the server, the kernel
and the sender thread) can be read. The events go to the loopback receiver of
``benchmarks/core.py``.

``--evict MB``: before each request, write over a buffer of that many MB, so
that the request starts with the processor's own caches holding none of its
code and data, as a served worker's request does after the kernel's and the
server's work. Each request's process CPU time is then read around it alone,
so the sender thread's share, which mostly runs meanwhile, is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import request_headers  # noqa: E402

FRAMEWORKS = ("django", "flask", "starlette")
LABELS = {"segment": "segment-web", "floor": "the floor", "minimal": "minimal"}
HOST = "127.0.0.1:8000"
#: The load generator's request, lower-case; ``BENCH_BROWSER=1``: ``loadgen.py --browser``'s.
HEADERS = {
    "host": HOST,
    **{
        name.lower(): value
        for name, value in request_headers(
            HOST, browser=bool(os.environ.get("BENCH_BROWSER"))
        ).items()
    },
}


def wsgi_environ() -> dict[str, Any]:
    """The WSGI environ of the measured request (``GET /``, ``HEADERS``), without its input."""
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in HEADERS.items()},
    }  # fmt: skip


def wsgi_caller(app: Any) -> Callable[[], None]:
    environ = wsgi_environ()

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        pass

    def call() -> None:
        body = app({**environ, "wsgi.input": io.BytesIO()}, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


def asgi_caller(app: Any) -> Callable[[], None]:
    loop = asyncio.new_event_loop()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in HEADERS.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    def call() -> None:
        loop.run_until_complete(app(dict(scope), receive, send))

    return call


def app_caller(framework: str) -> Callable[[], None]:
    """One request to ``framework``'s app of ``$BENCH_VARIANT``, built now (see ``adapters.py``)."""
    if framework == "starlette":
        from benchmarks.starlette_bench_app import make_app

        return asgi_caller(make_app())
    module = __import__(f"benchmarks.{framework}_bench_app", fromlist=["make_app"])
    return wsgi_caller(module.make_app())


def child(framework: str, variant: str, requests: int, chunks: int) -> None:
    """In a fresh process: build the app, warm it up, print CPU µs per request per chunk."""
    buffer = eviction_buffer()
    os.environ["BENCH_VARIANT"] = variant
    call = app_caller(framework)
    for _ in range(2000):
        call()
    per_chunk = requests // chunks
    results = []
    for _ in range(chunks):
        if buffer is not None:
            results.append(cold_calls(call, per_chunk, buffer) / per_chunk * 1e6)
            continue
        started = time.process_time()
        for _ in range(per_chunk):
            call()
        results.append((time.process_time() - started) / per_chunk * 1e6)
    print(json.dumps(results), flush=True)
    os._exit(0)  # the receiver counts nothing here: no need to wait for delivery


def eviction_buffer() -> Any:
    """The buffer of ``BENCH_EVICT_MB`` (``--evict``) to write over, or None if none."""
    size = int(float(os.environ.get("BENCH_EVICT_MB") or 0) * 2**20)
    return (ctypes.c_char * size)() if size else None


def evict(buffer: Any, turn: int) -> None:
    """Write over all of ``buffer`` (a new byte each turn): the caches hold it alone."""
    ctypes.memset(buffer, turn & 0xFF, len(buffer))


def cold_calls(call: Callable[[], None], count: int, buffer: Any) -> float:
    """Process CPU seconds of ``count`` calls, each after ``buffer`` was written over."""
    clock = time.process_time
    spent = 0.0
    for turn in range(count):
        evict(buffer, turn)
        started = clock()
        call()
        spent += clock() - started
    return spent


def run(framework: str, variant: str, args: argparse.Namespace, collector: str) -> list[float]:
    paths = (os.environ.get("BENCH_PYTHONPATH"), str(ROOT))
    env = {
        **os.environ,
        "BENCH_COLLECTOR": collector,
        "BENCH_SEGMENT_OPTIONS": json.dumps(args.option),
        # $BENCH_PYTHONPATH first: another checkout's packages (before/after).
        "PYTHONPATH": os.pathsep.join(filter(None, paths)),
    }
    command = [sys.executable, __file__, "--child", framework, variant, str(args.requests), "5"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    values: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return values


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--framework", choices=FRAMEWORKS, action="append")
    parser.add_argument("--requests", type=int, default=20_000, help="per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--option", metavar="NAME=JSON", action="append", default=[])
    parser.add_argument(
        "--variant",
        action="append",
        choices=("segment", "floor", "minimal"),
        help="what to set against the bare app (default: segment; repeatable)",
    )
    parser.add_argument(
        "--browser", action="store_true", help="the headers of loadgen.py --browser"
    )
    parser.add_argument(
        "--evict",
        type=float,
        default=0.0,
        metavar="MB",
        help="write over this many MB before each request: caches cold (try 8)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.browser:
        os.environ["BENCH_BROWSER"] = "1"  # read by the children's import of this module
    if args.evict:
        os.environ["BENCH_EVICT_MB"] = str(args.evict)  # read by the children
    if args.child:
        framework, variant, requests, chunks = args.child
        child(framework, variant, int(requests), int(chunks))
        return
    args.option = {n: json.loads(v) for n, _, v in (o.partition("=") for o in args.option)}
    from benchmarks.core import start_receiver

    receiver, port, _ = start_receiver()
    try:
        for framework in args.framework or FRAMEWORKS:
            variants = ["bare", *dict.fromkeys(args.variant or ["segment"])]
            figures: dict[str, list[float]] = {variant: [] for variant in variants}
            for _ in range(args.rounds):
                for variant in variants:
                    figures[variant].append(min(run(framework, variant, args, collector(port))))
            bare = statistics.median(figures["bare"])
            for variant in variants[1:]:
                value = statistics.median(figures[variant])
                print(
                    f"{framework:<10} bare {bare:6.1f} µs, with {LABELS[variant]} {value:6.1f} µs: "
                    f"{value - bare:+.1f} µs per request "
                    f"(best chunk, median of {args.rounds} rounds)"
                )
    finally:
        receiver.kill()
        receiver.wait()


def collector(port: int) -> str:
    return f"http://127.0.0.1:{port}/in-process"


if __name__ == "__main__":
    main()
