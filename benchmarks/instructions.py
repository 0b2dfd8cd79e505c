"""Machine instructions per request, counted by valgrind: figures that noise does not move.

Run from the repository root, after ``pip install -e '.[bench]'`` and with valgrind
installed (``apt-get install valgrind``)::

    .venv/bin/python benchmarks/instructions.py                     # every framework
    .venv/bin/python benchmarks/instructions.py --framework flask
    .venv/bin/python benchmarks/instructions.py --served --cache-sim   # with L1 misses
    .venv/bin/python benchmarks/instructions.py --browser           # a browser's headers
    .venv/bin/python benchmarks/instructions.py --cold 2.5          # and L2 misses, caches cold
    BENCH_PYTHONPATH=/tmp/old .venv/bin/python benchmarks/instructions.py   # another checkout too

Each configuration runs the app of ``benchmarks/request_path.py`` (the WSGI or
ASGI callable, no server) in a fresh interpreter under ``valgrind
--tool=callgrind``, twice: with ``--low`` and ``--high`` requests after a warm-up,
each followed by a flush of every event to the loopback receiver of
``benchmarks/core.py``. The difference of the two totals divided by the
difference of the counts is what one request costs, every thread included (the
sender's encoding, gzip and HTTP too), start-up and shutdown cancelled out. On a
shared virtual machine where the same run's CPU time moves by half, this count
moves by a few percent at most (the sender's batches and the cycle collector's
passes fall a little differently from run to run).

``--request-thread`` counts the thread that serves the requests alone
(callgrind's ``--separate-threads=yes``): the sender's batches, which fall on the
clock and move a whole-process count by several thousand instructions, are left
out, so a change of a few thousand on the request's path shows.

``--served`` counts a real server's worker instead: gunicorn's sync worker
(Django, Flask) or uvicorn (Starlette) started under callgrind, loaded with
``--high - --low`` requests of new visitors after a warm-up; ``callgrind_control
--dump`` before and after the load gives the worker's instructions per request,
its threads included (the server's parsing and writing too; the kernel's work is
not counted by valgrind). With ``--cache-sim`` it also counts the first-level
cache misses callgrind simulates (code and data, 32 KB each, the worker's own
accesses only: what the kernel and other processes evict is not simulated), to
compare how often the code each configuration adds misses them per instruction.

``--cold MB`` counts the request thread as ``--request-thread`` does, with this
machine's caches simulated (their sizes read from ``/sys``; the second level as
callgrind's last) and ``MB`` written over before each request, so that every
request starts with none of its code and data in the first two levels, as a
served worker's request does after the kernel's and the server's work. It adds
the second-level misses per request (code, data read, data written), less those
of the writing itself (a run that writes and serves nothing), for the bare app,
segment-web and the yardsticks.

The configurations split segment-web's cost into its parts: the adapter and the
request's context alone (no page call, no cookie), the cookie, the page call (and
its delivery), a ``request.analytics.track()`` in the view, and a returning
visitor (the ``ajs_anonymous_id`` cookie sent, none set). Beside them, the
yardsticks of ``benchmarks/_peers.py``: ``minimal``, ``floor``, and ``hooks``
(the framework's hook points that the adapter uses, doing nothing: what the
framework charges for hosting any adapter). With
``BENCH_PYTHONPATH``, that checkout's packages are counted too ("other").
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import request_headers  # noqa: E402

FRAMEWORKS = ("django", "flask", "starlette")
RETURNING_COOKIE = "ajs_anonymous_id=3b241101-e2bb-4255-8caf-4136c566a962"
NO_PAGE = {"page_calls": False, "page_source": "browser"}

#: (label, variant, segment options, environment): what each run serves.
CONFIGURATIONS: Sequence[tuple[str, str, dict[str, object], dict[str, str]]] = (
    ("bare app", "bare", {}, {}),
    ("segment-web", "segment", {}, {}),
    ("minimal: middleware, no checks", "minimal", {}, {}),
    ("floor: the same, raw environ", "floor", {}, {}),
    ("hooks: the adapter's hook points alone", "hooks", {}, {}),
    ("  no page call, no cookie", "segment", {**NO_PAGE, "set_cookie": False}, {}),
    ("  no page call", "segment", NO_PAGE, {}),
    ("  one track() in the view", "segment", {}, {"BENCH_TRACK": "1"}),
    ("  returning visitor", "segment", {}, {"BENCH_RETURNING": "1"}),
)


def child(framework: str, variant: str, requests: int) -> None:
    """In the measured interpreter: warm up, serve ``requests``, flush, leave."""
    os.environ["BENCH_VARIANT"] = variant
    from benchmarks import request_path

    if os.environ.get("BENCH_RETURNING"):
        request_path.HEADERS = {**request_path.HEADERS, "cookie": RETURNING_COOKIE}
    call = request_path.app_caller(framework)
    for _ in range(300):
        call()
    buffer = request_path.eviction_buffer()
    if buffer is not None:
        serve = not os.environ.get("BENCH_EVICT_ONLY")
        for turn in range(requests):
            request_path.evict(buffer, turn)
            if serve:
                call()
    else:
        for _ in range(requests):
            call()
    if variant == "segment":
        from segment_core import get_client

        if not get_client().flush(60):
            sys.exit("the events were not all delivered")
    elif variant != "bare":
        from benchmarks import _peers

        _peers.flush_all()
    os._exit(0)


def _env(
    variant: str,
    options: dict[str, object],
    extra_env: dict[str, str],
    collector: str,
    path_first: str | None,
) -> dict[str, str]:
    """The environment of a measured interpreter: the app's variant, options and code."""
    python_path = [str(ROOT)] if path_first is None else [path_first, str(ROOT)]
    return {
        **os.environ,
        **extra_env,
        "BENCH_VARIANT": variant,
        "BENCH_COLLECTOR": collector,
        "BENCH_SEGMENT_OPTIONS": json.dumps(options),
        "PYTHONPATH": os.pathsep.join(python_path),
    }


def count(
    framework: str,
    variant: str,
    options: dict[str, object],
    extra_env: dict[str, str],
    requests: int,
    *,
    collector: str,
    path_first: str | None,
    request_thread: bool = False,
) -> int:
    """Instructions of one whole run under callgrind (of its first thread alone if asked)."""
    env = _env(variant, options, extra_env, collector, path_first)
    if request_thread:
        return _request_thread_events(framework, variant, env, requests, timeout=900)["Ir"]
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--child", framework, variant, str(requests),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        sys.exit(f"{framework} {variant}: {done.stderr[-2000:]}")
    return int(found.group(1))


def cold_count(
    framework: str,
    variant: str,
    extra_env: dict[str, str],
    requests: int,
    *,
    collector: str,
    path_first: str | None,
) -> dict[str, int]:
    """Events of the request thread of one run with the caches simulated (``--cold``)."""
    env = _env(variant, {}, extra_env, collector, path_first)
    return _request_thread_events(
        framework, variant, env, requests, "--cache-sim=yes", *cache_geometry(), timeout=1800
    )


def _request_thread_events(
    framework: str,
    variant: str,
    env: dict[str, str],
    requests: int,
    *valgrind_options: str,
    timeout: float,
) -> dict[str, int]:
    """Each event's total for the thread that serves the requests, in one run."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind", "--tool=callgrind", "--separate-threads=yes", *valgrind_options,
            f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--child", framework, variant, str(requests),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        # The thread that serves the requests is the interpreter's first: out-01.
        totals = None if done.returncode else _totals(Path(folder, "out-01").read_text())
    if totals is None:
        sys.exit(f"{framework} {variant}: {done.stderr[-2000:]}")
    return totals


def _totals(text: str) -> dict[str, int] | None:
    """Each event's total in a callgrind output file, or None if it holds none yet."""
    events = re.search(r"^events:\s*(.+)$", text, re.M)
    found = re.search(r"^summary:\s*(.+)$", text, re.M)
    if events is None or found is None:
        return None
    return dict(zip(events.group(1).split(), map(int, found.group(1).split()), strict=True))


def cache_geometry() -> list[str]:
    """callgrind's ``--I1``, ``--D1`` and ``--LL`` for this machine's first two levels."""
    options = []
    for index, option in ((1, "--I1"), (0, "--D1"), (2, "--LL")):
        folder = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}")
        try:
            size = int((folder / "size").read_text().strip().removesuffix("K")) * 1024
            ways = int((folder / "ways_of_associativity").read_text())
            line = int((folder / "coherency_line_size").read_text())
        except (OSError, ValueError):
            continue  # callgrind's own guess for this level
        sets = size // (ways * line) if ways and line else 0
        if sets and not sets & (sets - 1):  # callgrind takes a power of two only
            options.append(f"{option}={size},{ways},{line}")
    return options


def served_count(
    framework: str,
    variant: str,
    options: dict[str, object],
    extra_env: dict[str, str],
    requests: int,
    *,
    collector: str,
    path_first: str | None,
    cache_sim: bool = False,
) -> dict[str, int]:
    """Events per request of a served app's worker, between two callgrind dumps.

    ``Ir`` (instructions), and with ``cache_sim`` the simulated first-level cache
    misses too: ``I1mr`` (code), ``D1mr`` and ``D1mw`` (data read and written).
    """
    from benchmarks._overhead import _free_port

    env = _env(variant, options, extra_env, collector, path_first)
    port = _free_port()
    if framework == "starlette":
        server = [
            "-m", "uvicorn", "--factory", "benchmarks.starlette_bench_app:make_app",
            "--host=127.0.0.1", f"--port={port}", "--http=h11", "--loop=asyncio",
            "--lifespan=on", "--no-access-log", "--log-level=warning",
        ]  # fmt: skip
    else:
        server = [
            "-m", "gunicorn", "--workers=1", "--threads=1", "--worker-class=sync",
            f"--bind=127.0.0.1:{port}", "--timeout=0", "--graceful-timeout=60",
            f"benchmarks.{framework}_bench_app:make_app()",
        ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        log_path = os.path.join(folder, "log")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--trace-children=yes",
                 *(["--cache-sim=yes"] if cache_sim else []),
                 f"--callgrind-out-file={folder}/cg.%p", sys.executable, *server],
                env=env, cwd=path_first or str(ROOT), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _get(port, deadline=time.monotonic() + 300)
            for _ in range(200):
                _get(port)
            text = Path(log_path).read_text()
            booted = re.findall(r"Booting worker with pid: (\d+)", text)
            worker = int(booted[-1]) if booted else process.pid
            _dump(worker, folder)
            for _ in range(requests):
                _get(port)
            return {event: total // requests for event, total in _dump(worker, folder).items()}
        finally:
            process.terminate()
            process.wait(120)


def _get(port: int, deadline: float | None = None) -> None:
    """One page view of a new visitor; until ``deadline``, retried while the server starts."""
    headers = request_headers(f"127.0.0.1:{port}", browser=bool(os.environ.get("BENCH_BROWSER")))
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            connection.request("GET", "/", headers=dict(headers))
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            if deadline is None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _dump(pid: int, folder: str) -> dict[str, int]:
    """Each event's total since the last dump (callgrind zeroes its counters at each)."""
    before = set(os.listdir(folder))
    subprocess.run(["callgrind_control", "--dump", str(pid)], capture_output=True, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [n for n in set(os.listdir(folder)) - before if n.startswith(f"cg.{pid}.")]
        if new:
            time.sleep(0.5)  # written whole
            totals = _totals(Path(folder, new[0]).read_text())
            if totals is not None:
                return totals
        time.sleep(0.2)
    raise RuntimeError("callgrind_control wrote no dump")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--framework", choices=FRAMEWORKS, action="append")
    parser.add_argument("--low", type=int, default=100, help="requests of the shorter run")
    parser.add_argument("--high", type=int, default=600, help="requests of the longer run")
    parser.add_argument("--served", action="store_true", help="a real server's worker")
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="with --served: also the simulated first-level cache misses per request",
    )
    parser.add_argument(
        "--request-thread",
        action="store_true",
        help="in-process: the thread that serves the requests alone, without the sender's",
    )
    parser.add_argument(
        "--browser", action="store_true", help="the headers of loadgen.py --browser"
    )
    parser.add_argument(
        "--cold",
        type=float,
        metavar="MB",
        help="the request thread with caches simulated and MB written over before each "
        "request: second-level misses too (try 2.5)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.browser:
        os.environ["BENCH_BROWSER"] = "1"  # for the measured interpreters, and _get()
    if args.child:
        framework, variant, requests = args.child
        child(framework, variant, int(requests))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    from benchmarks.core import start_receiver

    other = os.environ.get("BENCH_PYTHONPATH")
    configurations = list(CONFIGURATIONS)
    if other:
        configurations.insert(2, (f"segment-web of {other}", "segment", {}, {"_OTHER": "1"}))
    receiver, port, _ = start_receiver()
    collector = f"http://127.0.0.1:{port}/in-process"
    if args.cold:
        try:
            cold(args, collector, other)
        finally:
            receiver.kill()
            receiver.wait()
        return
    try:
        for framework in args.framework or FRAMEWORKS:
            bare: int | None = None
            bare_misses = 0
            where = (
                "a served worker"
                if args.served
                else "in-process, the request thread"
                if args.request_thread
                else "in-process, every thread"
            )
            print(f"{framework}: instructions per request ({where}), {args.high - args.low}"
                  f" requests counted")  # fmt: skip
            for label, variant, options, extra_env in configurations:
                first = other if extra_env.get("_OTHER") else None
                env = {k: v for k, v in extra_env.items() if not k.startswith("_")}
                if args.served:
                    if extra_env.get("BENCH_RETURNING"):
                        continue  # the served load is new visitors only
                    events = served_count(
                        framework, variant, options, env, args.high - args.low,
                        collector=collector, path_first=first, cache_sim=args.cache_sim,
                    )  # fmt: skip
                    per_request = events["Ir"]
                else:
                    run = functools.partial(
                        count, framework, variant, options, env, collector=collector,
                        path_first=first, request_thread=args.request_thread,
                    )  # fmt: skip
                    with ThreadPoolExecutor(2) as pool:  # the two runs side by side
                        low, high = pool.map(run, (args.low, args.high))
                    per_request = (high - low) // (args.high - args.low)
                bare = per_request if bare is None else bare
                added = f"+{per_request - bare:,}" if variant != "bare" else ""
                line = f"  {label:<40} {per_request:>10,} {added:>10}"
                if args.served and args.cache_sim:
                    misses = events["I1mr"] + events["D1mr"] + events["D1mw"]
                    bare_misses = misses if variant == "bare" else bare_misses
                    more = f"+{misses - bare_misses:,}" if variant != "bare" else ""
                    line += f"   L1 misses {misses:>7,} {more:>7}"
                print(line, flush=True)
    finally:
        receiver.kill()
        receiver.wait()


#: ``--cold``: the bare app, segment-web and the yardsticks.
COLD_CONFIGURATIONS = ("bare", "segment", "minimal", "floor", "hooks")
#: The second-level misses callgrind counts: code read, data read, data written.
SECOND_LEVEL_MISSES = ("ILmr", "DLmr", "DLmw")


def cold(args: argparse.Namespace, collector: str, other: str | None) -> None:
    """``--cold``: instructions and second-level misses per request, caches cold."""
    os.environ["BENCH_EVICT_MB"] = str(args.cold)  # passed on to the measured interpreters
    labels: dict[str, str] = {}
    for label, variant, _, _ in CONFIGURATIONS:
        labels.setdefault(variant, label)  # the first: the plain configuration
    runs: list[tuple[str, str, dict[str, str], str | None]] = [
        ("writing over the caches alone", "bare", {"BENCH_EVICT_ONLY": "1"}, None),
        *((labels[v], v, {}, None) for v in COLD_CONFIGURATIONS),
    ]
    if other:
        runs.insert(3, (f"segment-web of {other}", "segment", {}, other))
    for framework in args.framework or FRAMEWORKS:
        print(f"{framework}: per request, the request thread, {args.cold:g} MB written over "
              f"before each; {args.high - args.low} requests counted")  # fmt: skip
        print(f"  {'':<40} {'instructions':>12} {'added':>9} {'L2 misses':>10} {'added':>7}")
        base: dict[str, int] | None = None
        bare: dict[str, int] | None = None
        for label, variant, extra_env, first in runs:
            run = functools.partial(
                cold_count, framework, variant, extra_env,
                collector=collector, path_first=first,
            )  # fmt: skip
            with ThreadPoolExecutor(2) as pool:
                low, high = pool.map(run, (args.low, args.high))
            spent = {k: (high[k] - low[k]) // (args.high - args.low) for k in high}
            if base is None:
                base = spent
                print(f"  {label:<40} {spent['Ir']:>12,} {'':>9} {_misses(spent):>10,}")
                continue
            own = {k: spent[k] - base[k] for k in spent}  # less the writing itself
            bare = own if bare is None else bare
            added = (
                f"{own['Ir'] - bare['Ir']:+,}" if variant != "bare" or first else "",
                f"{_misses(own) - _misses(bare):+,}" if variant != "bare" or first else "",
            )
            print(f"  {label:<40} {own['Ir']:>12,} {added[0]:>9} {_misses(own):>10,} "
                  f"{added[1]:>7}", flush=True)  # fmt: skip


def _misses(events: dict[str, int]) -> int:
    return sum(events[name] for name in SECOND_LEVEL_MISSES)


if __name__ == "__main__":
    main()
