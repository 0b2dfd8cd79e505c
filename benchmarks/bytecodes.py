"""Python bytecodes executed per request, by package: an exact count of who runs what.

Run from the repository root, after ``pip install -e '.[bench]'``::

    .venv/bin/python benchmarks/bytecodes.py                           # every framework
    .venv/bin/python benchmarks/bytecodes.py --framework django --functions 30
    .venv/bin/python benchmarks/bytecodes.py --variant segment --variant floor --variant hooks
    .venv/bin/python benchmarks/bytecodes.py --variant segment --option skip_bots=false

Each variant of ``adapters.py`` runs the app of ``request_path.py`` (the WSGI or
ASGI callable, no server, a new visitor's ``GET /``) in a fresh interpreter,
warms it up, then counts every bytecode the request thread executes over
``--requests`` requests (``sys.settrace`` with opcode events). The count is the
same from run to run; where CPU time and even machine instructions move with the
cycle collector and the sender's batches, it shows which package's Python a
change adds or removes, and how much, exactly. It does not weigh them: a
bytecode that calls into C (a dict copy, orjson) counts once.

Packages: the framework's (``django``, ``asgiref``; ``flask``, ``werkzeug``,
``blinker``; ``starlette``), the standard library's, this project's
(``segment_core``, the adapter), code that ``dataclasses`` generates (``<string>``),
the yardsticks of ``benchmarks/`` and their sender. ``--option NAME=JSON`` gives
segment-web an option, as ``adapters.py --option`` does: what turning a rule off
saves is the difference of two runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRAMEWORKS = ("django", "flask", "starlette")
VARIANTS = ("bare", "segment", "floor", "minimal", "hooks")
STDLIB = sysconfig.get_paths()["stdlib"]
PROJECT = ("segment_core", "segment_django", "segment_flask", "segment_asgi")


def package_of(filename: str) -> str:
    """The package a code object's file belongs to, as the report groups them."""
    in_stdlib = filename.startswith(STDLIB) and "site-packages" not in filename
    if in_stdlib or filename.startswith("<frozen"):
        return "stdlib"
    if filename.startswith("<"):
        return filename  # "<string>": what dataclasses and namedtuple generate
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1].split("/", 1)[0]
    return "other"


def child(framework: str, variant: str, requests: int) -> None:
    """In a fresh interpreter: warm up, count the request thread's bytecodes, print JSON."""
    os.environ["BENCH_VARIANT"] = variant
    from benchmarks import request_path

    call = request_path.app_caller(framework)
    for _ in range(300):
        call()
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    serving = threading.get_ident()

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if threading.get_ident() != serving:
            return None
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = (code.co_filename, code.co_name)

        def on_event(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[key] += 1
            return on_event

        return on_event

    sys.settrace(on_call)
    for _ in range(requests):
        call()
    sys.settrace(None)
    rows = [[filename, name, count / requests] for (filename, name), count in counts.items()]
    print(json.dumps(rows), flush=True)
    os._exit(0)  # nothing here is waited for: the events need not leave


def run(framework: str, variant: str, args: argparse.Namespace, collector: str) -> list[list[Any]]:
    env = {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_COLLECTOR": collector,
        "BENCH_SEGMENT_OPTIONS": json.dumps(args.option),
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", framework, variant, str(args.requests)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"{framework} {variant}: {done.stderr[-2000:]}")
    rows: list[list[Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def report(framework: str, results: dict[str, list[list[Any]]], functions: int) -> None:
    by_package = {
        variant: collections.Counter[str]() for variant in results
    }  # variant -> package -> bytecodes per request
    for variant, rows in results.items():
        for filename, _, count in rows:
            by_package[variant][package_of(filename)] += count
    bare = by_package.get("bare", collections.Counter[str]())
    print(f"{framework}: bytecodes per request, the request thread")
    for variant, packages in by_package.items():
        total = sum(packages.values())
        added = total - sum(bare.values())
        parts = ", ".join(
            f"{package} {count - bare[package]:+.0f}"
            for package, count in sorted(packages.items(), key=lambda item: -item[1])
            if round(count - bare[package]) != 0
        )
        line = f"  {variant:<8} {total:7.0f}"
        print(line if variant == "bare" else f"{line} {added:+7.0f}  ({parts})")
    if functions and "segment" in results:
        print(f"  segment-web's own functions, the {functions} that run the most bytecodes:")
        own = [row for row in results["segment"] if package_of(row[0]) in PROJECT]
        for filename, name, count in sorted(own, key=lambda row: -row[2])[:functions]:
            where = filename.split(str(ROOT) + "/", 1)[-1].split("site-packages/", 1)[-1]
            print(f"    {count:6.0f}  {where}:{name}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--framework", choices=FRAMEWORKS, action="append")
    parser.add_argument("--variant", choices=VARIANTS[1:], action="append")
    parser.add_argument("--requests", type=int, default=20, help="requests counted")
    parser.add_argument("--functions", type=int, default=0, help="list segment-web's top N")
    parser.add_argument("--option", metavar="NAME=JSON", action="append", default=[])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        framework, variant, requests = args.child
        child(framework, variant, int(requests))
        return
    args.option = {n: json.loads(v) for n, _, v in (o.partition("=") for o in args.option)}
    from benchmarks.core import start_receiver
    from benchmarks.request_path import collector

    receiver, port, _ = start_receiver()
    try:
        for framework in args.framework or FRAMEWORKS:
            variants = ["bare", *dict.fromkeys(args.variant or VARIANTS[1:])]
            results = {v: run(framework, v, args, collector(port)) for v in variants}
            report(framework, results, args.functions)
    finally:
        receiver.kill()
        receiver.wait()


if __name__ == "__main__":
    main()
