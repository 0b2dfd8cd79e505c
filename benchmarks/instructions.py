"""Machine instructions per request, counted by valgrind: figures that noise does not move.

Run from the repository root, after ``pip install -e '.[bench]'`` and with valgrind
installed (``apt-get install valgrind``)::

    .venv/bin/python benchmarks/instructions.py                     # every framework
    .venv/bin/python benchmarks/instructions.py --framework flask
    BENCH_PYTHONPATH=/tmp/old .venv/bin/python benchmarks/instructions.py   # another checkout too

Each configuration runs the app of ``benchmarks/request_path.py`` (the WSGI or
ASGI callable, no server) in a fresh interpreter under ``valgrind
--tool=callgrind``, twice: with ``--low`` and ``--high`` requests after a warm-up,
each followed by a flush of every event to the loopback receiver of
``benchmarks/core.py``. The difference of the two totals divided by the
difference of the counts is what one request costs, every thread included (the
sender's encoding, gzip and HTTP too), start-up and shutdown cancelled out. On a
shared virtual machine where the same run's CPU time moves by half, this count
moves by well under 1%.

The configurations split segment-web's cost into its parts: the adapter and the
request's context alone (no page call, no cookie), the cookie, the page call (and
its delivery), a ``request.analytics.track()`` in the view, and a returning
visitor (the ``ajs_anonymous_id`` cookie sent, none set). With
``BENCH_PYTHONPATH``, that checkout's packages are counted too ("other").
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRAMEWORKS = ("django", "flask", "starlette")
RETURNING_COOKIE = "ajs_anonymous_id=3b241101-e2bb-4255-8caf-4136c566a962"
NO_PAGE = {"page_calls": False, "page_source": "browser"}

#: (label, variant, segment options, environment): what each run serves.
CONFIGURATIONS: Sequence[tuple[str, str, dict[str, object], dict[str, str]]] = (
    ("bare app", "bare", {}, {}),
    ("segment-web", "segment", {}, {}),
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
    if framework == "starlette":
        from benchmarks.starlette_bench_app import make_app

        call = request_path.asgi_caller(make_app())
    else:
        module = __import__(f"benchmarks.{framework}_bench_app", fromlist=["make_app"])
        call = request_path.wsgi_caller(module.make_app())
    for _ in range(300):
        call()
    for _ in range(requests):
        call()
    if variant == "segment":
        from segment_core import get_client

        if not get_client().flush(60):
            sys.exit("the events were not all delivered")
    os._exit(0)


def count(
    framework: str,
    variant: str,
    options: dict[str, object],
    extra_env: dict[str, str],
    requests: int,
    *,
    collector: str,
    path_first: str | None,
) -> int:
    """Instructions of one whole run under callgrind."""
    python_path = [str(ROOT)] if path_first is None else [path_first, str(ROOT)]
    env = {
        **os.environ,
        **extra_env,
        "BENCH_COLLECTOR": collector,
        "BENCH_SEGMENT_OPTIONS": json.dumps(options),
        "PYTHONPATH": os.pathsep.join(python_path),
    }
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--framework", choices=FRAMEWORKS, action="append")
    parser.add_argument("--low", type=int, default=100, help="requests of the shorter run")
    parser.add_argument("--high", type=int, default=600, help="requests of the longer run")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        framework, variant, requests = args.child
        child(framework, variant, int(requests))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    from benchmarks.core import start_receiver

    other = os.environ.get("BENCH_PYTHONPATH")
    configurations = list(CONFIGURATIONS)
    if other:
        configurations.insert(2, (f"segment-web of {other}", "segment", {}, {"_OTHER": "1"}))
    receiver, port, _ = start_receiver()
    collector = f"http://127.0.0.1:{port}/in-process"
    try:
        for framework in args.framework or FRAMEWORKS:
            bare: int | None = None
            print(f"{framework}: instructions per request (every thread), {args.high - args.low}"
                  f" requests counted")  # fmt: skip
            for label, variant, options, extra_env in configurations:
                first = other if extra_env.get("_OTHER") else None
                env = {k: v for k, v in extra_env.items() if not k.startswith("_")}
                run = functools.partial(
                    count, framework, variant, options, env, collector=collector, path_first=first
                )
                with ThreadPoolExecutor(2) as pool:  # the two runs side by side
                    low, high = pool.map(run, (args.low, args.high))
                per_request = (high - low) // (args.high - args.low)
                bare = per_request if bare is None else bare
                added = f"+{per_request - bare:,}" if variant != "bare" else ""
                print(f"  {label:<40} {per_request:>10,} {added:>10}", flush=True)
    finally:
        receiver.kill()
        receiver.wait()


if __name__ == "__main__":
    main()
