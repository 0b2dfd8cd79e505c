"""Objects per request that only the cycle collector frees, by framework and variant.

Run from the repository root, after ``pip install -e '.[bench]'``::

    .venv/bin/python benchmarks/cyclic_garbage.py

Each variant of ``adapters.py`` runs the app of ``request_path.py`` (the WSGI or
ASGI callable, no server, a new visitor's ``GET /``) in a fresh interpreter. After
a warm-up it turns the cycle collector off, makes ``--requests`` requests, and
counts what the collector then finds unreachable: the objects each request left in
reference cycles, which a served worker's collector passes must walk. The count is
exact and the same on any machine. The events go to a port nobody listens on: the
count is of the request thread's objects, not of delivery.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRAMEWORKS = ("django", "flask", "starlette")
VARIANTS = ("bare", "segment", "floor")


def child(framework: str, requests: int) -> None:
    """In a fresh process (``$BENCH_VARIANT`` set): print the cyclic objects per request."""
    from benchmarks.request_path import app_caller

    call = app_caller(framework)
    for _ in range(500):
        call()
    gc.collect()
    gc.disable()
    for _ in range(requests):
        call()
    print(gc.collect() / requests, flush=True)
    os._exit(0)  # nothing to deliver: the events' port answers no one


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.requests)
        return
    print("objects per request freed only by the cycle collector")
    for framework in FRAMEWORKS:
        counts = []
        for variant in VARIANTS:
            env = {
                **os.environ,
                "BENCH_VARIANT": variant,
                "BENCH_COLLECTOR": "http://127.0.0.1:9/segment",
            }
            out = subprocess.run(
                [sys.executable, __file__, "--child", framework, "--requests", str(args.requests)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            ).stdout
            counts.append(f"{variant} {float(out.strip().splitlines()[-1]):g}")
        print(f"  {framework:<10}" + "   ".join(counts))


if __name__ == "__main__":
    main()
