"""Benchmark: what a page view costs with segment-web and with the integrations users pick instead.

Run from the repository root, after ``pip install -e '.[bench]'``::

    .venv/bin/python benchmarks/adapters.py --quick      # a smoke run, about a minute and a half
    .venv/bin/python benchmarks/adapters.py              # 5 rounds of 4 s per server, ~8 min
    .venv/bin/python benchmarks/adapters.py --frameworks flask --variants bare,segment
    .venv/bin/python benchmarks/adapters.py --returning --track --variants segment
    .venv/bin/python benchmarks/adapters.py --variants segment,segment-track,segment-returning
    .venv/bin/python benchmarks/adapters.py --browser --variants bare,segment,floor

For each framework (Django and Flask under gunicorn with one sync worker,
Starlette under uvicorn) it serves the same hello-world page with each
integration of ``benchmarks/_peers.py``: none (``bare``), segment-web, two
yardsticks (``minimal``, ``floor``), analytics-python behind a hand-written
middleware, OpenTelemetry, PostHog and Sentry, every one shipping one event per
request to the fast loopback receiver of ``benchmarks/core.py``. One framework
at a time, its servers run together; rounds load each in turn (the order rotates
every round) with the project's load generator, which keeps no cookies: every
request is a new visitor, and sends a ``Host``, a ``User-Agent`` and an
``Accept`` line (``--browser``: the headers Chrome sends when it follows a link
of the site, Referer, languages and fetch metadata among them; ``--returning``:
every request carries the same ``ajs_anonymous_id`` cookie; ``--track``:
segment-web's view also calls ``request.analytics.track()`` once, and the
``floor`` sends a track message beside its page message). The derived variants
(``segment-track``, ``segment-returning``, ``floor-track``, ``floor-returning``)
make one of those changes for one server, so that a run sets it beside its
base, interleaved, and prints what it adds relative to the base's addition. After a graceful stop of
every server, the receiver's count for each must equal the events it owes.

The table shows, per framework and integration, the medians over rounds of
requests/s and of the worker's CPU time per request (from ``/proc``: request
handling and the integration's background threads), what the integration adds
(the median over rounds of its CPU per request minus the bare app's in the same
round, and the range of those differences), and the POSTs and bytes it sent in
total.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    from benchmarks._overhead import (
        Server,
        load,
        start_gunicorn,
        start_uvicorn,
        stop_all,
        wait_started,
    )
    from benchmarks._peers import DERIVED, TRACKING, VARIANTS, base_variant
    from benchmarks.core import receiver_report, start_receiver
except ImportError as error:  # pragma: no cover - a missing benchmark dependency
    sys.exit(f"{error}: install the benchmark's dependencies: pip install -e '.[bench]'")

FRAMEWORKS = ("django", "flask", "starlette")
#: Connections the load generator keeps open: a sync worker serves one at a time.
CONNECTIONS = {"django": 4, "flask": 4, "starlette": 8}
#: Packages each integration needs, checked before anything starts.
REQUIRES = {
    "django": ("django", "gunicorn"),
    "flask": ("flask", "gunicorn"),
    "starlette": ("starlette", "uvicorn"),
    "analytics-python": ("segment-analytics-python",),
    "opentelemetry": (
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-instrumentation-django",
        "opentelemetry-instrumentation-flask",
        "opentelemetry-instrumentation-asgi",
    ),
    "posthog": ("posthog",),
    "sentry": ("sentry-sdk",),
}
LABELS = {
    "bare": "bare app",
    "segment": "segment-web",
    "minimal": "minimal: middleware, no checks",
    "floor": "floor: the same, raw environ",
    "analytics-python": "analytics-python + middleware",
    "opentelemetry": "OpenTelemetry, OTLP/HTTP",
    "posthog": "PostHog $pageview",
    "sentry": "Sentry, traces 100%",
    "segment-track": "segment-web, one track() more",
    "segment-returning": "segment-web, returning visitor",
    "floor-track": "floor, one track more",
    "floor-returning": "floor, returning visitor",
}
FRAMEWORK_LABELS = {
    "django": "Django (gunicorn sync)",
    "flask": "Flask (gunicorn sync)",
    "starlette": "Starlette (uvicorn)",
}
#: The anonymous id of ``--returning``'s visitor (analytics-next's raw cookie format).
RETURNING_VISITOR = "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
RETURNING_COOKIE = f"ajs_anonymous_id={RETURNING_VISITOR}"
TIMES = "\N{MULTIPLICATION SIGN}"
#: Time for the receiver to have counted what stopped servers sent.
DELIVERY_WAIT_SECONDS = 10.0


def start(framework: str, variant: str, receiver_url: str) -> Server:
    if framework == "starlette":
        factory = "benchmarks.starlette_bench_app:make_app"
        return start_uvicorn(framework, variant, factory, receiver_url)
    app = f"benchmarks.{framework}_bench_app:make_app()"
    return start_gunicorn(framework, variant, app, receiver_url)


def missing_packages(frameworks: Sequence[str], variants: Sequence[str]) -> list[str]:
    missing = []
    for name in (*frameworks, *variants):
        for distribution in REQUIRES.get(name, ()):
            try:
                metadata.version(distribution)
            except metadata.PackageNotFoundError:
                missing.append(distribution)
    return sorted(set(missing))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Each framework in turn: its servers together, loaded in interleaved rounds."""
    started = time.monotonic()
    receiver, port, _ = start_receiver()
    receiver_url = f"http://127.0.0.1:{port}"
    servers: list[Server] = []
    rounds: list[int] = []
    load_average = os.getloadavg()
    try:
        for framework in args.frameworks:
            group = [start(framework, variant, receiver_url) for variant in args.variants]
            servers += group
            rounds.append(_measure_group(args, group, started))
            load_average = os.getloadavg()
            stop_all(group)  # graceful: each integration delivers what it holds
        report = _wait_delivered(port, servers, args.track)
    finally:
        stop_all(servers)
        receiver.kill()
        receiver.wait()
    return {
        "rounds": min(rounds),
        "seconds_per_run": args.seconds,
        "segment_options": args.option,
        "load_average": load_average,
        "cpus": os.cpu_count(),
        "elapsed": time.monotonic() - started,
        "versions": _versions(),
        "receiver_errors": report["errors"],
        "returning_visitors": bool(args.cookie),
        "track_per_request": args.track,
        "browser_headers": args.browser,
        "results": _results(servers, report["sources"], args.track),
    }


def _measure_group(args: argparse.Namespace, group: list[Server], started: float) -> int:
    """Warm-up, then rounds over one framework's servers (the order rotates); rounds run."""
    connections = CONNECTIONS[group[0].framework]
    for server in group:  # started together, so they import in parallel
        wait_started(server)
    for server in group:  # warm-up: imports, first connections, caches
        load(server, args.warmup, connections, cookie(args, server), browser=args.browser)
    budget = args.budget * (args.frameworks.index(group[0].framework) + 1) / len(args.frameworks)
    for round_index in range(args.rounds):
        shift = round_index % len(group)
        for server in group[shift:] + group[:shift]:
            run = load(
                server, args.seconds, connections, cookie(args, server), browser=args.browser
            )
            server.runs.append(run)
            _progress(args, round_index, server, run)
        if time.monotonic() - started > budget:
            return round_index + 1  # stay within the bound on a slow machine
    return args.rounds


def _progress(args: argparse.Namespace, round_index: int, server: Server, run: Any) -> None:
    if not args.json:
        print(
            f"  [{round_index + 1}/{args.rounds}] {server.source:<28} {run.per_second:7.0f} req/s "
            f"{run.cpu_per_request_us:6.0f} µs CPU/req",
            file=sys.stderr,
        )


def cookie(args: argparse.Namespace, server: Server) -> str:
    """The ``Cookie`` header of ``server``'s load: a returning visitor's, or none."""
    if args.cookie or not server.variant.endswith("-returning"):
        return str(args.cookie)
    return RETURNING_COOKIE


def owed(server: Server, track: bool) -> int:
    """Events ``server`` owes: one per request answered, two with a track event per request."""
    if server.variant == "bare":
        return 0
    variant = server.variant
    tracked = variant.endswith("-track") or (track and base_variant(variant) in TRACKING)
    return server.served * (2 if tracked else 1)


def _wait_delivered(port: int, servers: list[Server], track: bool) -> dict[str, Any]:
    """The receiver's counts once every owed event arrived, or the deadline passed."""
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    while True:
        report = receiver_report(port)
        sources = report["sources"]
        done = all(_delivered(sources, s) >= owed(s, track) for s in servers)
        if done or time.monotonic() > deadline:
            return report
        time.sleep(0.2)  # the receiver is still reading; bounded by the deadline


def _delivered(sources: dict[str, dict[str, int]], server: Server) -> int:
    return sources.get(server.source, {}).get("messages", 0)


def _results(
    servers: list[Server], sources: dict[str, dict[str, int]], track: bool
) -> list[dict[str, Any]]:
    bare_cpu: dict[str, list[float]] = {}
    bare_rps: dict[str, float] = {}
    results = []
    for server in servers:
        rps = statistics.median(r.per_second for r in server.runs)
        cpu = [r.cpu_per_request_us for r in server.runs]
        if server.variant == "bare":
            bare_cpu[server.framework] = cpu
            bare_rps[server.framework] = rps
        counts = sources.get(server.source, {})
        results.append(
            {
                "framework": server.framework,
                "variant": server.variant,
                "rps": rps,
                "rps_runs": [r.per_second for r in server.runs],
                "cpu_us": statistics.median(cpu),
                "cpu_us_runs": cpu,
                "served": server.served,
                "owed": owed(server, track),
                "errors": server.errors,
                "delivered": counts.get("messages", 0),
                # Events the integration itself reports it dropped (Sentry's client reports).
                "dropped": counts.get("discarded", 0),
                "posts": counts.get("requests", 0),
                "bytes": counts.get("body_bytes", 0),
            }
        )
    for result in results:
        framework = result["framework"]
        if framework in bare_cpu:
            result["ratio"] = result["rps"] / bare_rps[framework]
            # Each round's run against the bare app's run of the same round (the
            # runs of a round are seconds apart, rounds minutes): the median of
            # these paired differences is steadier than a difference of medians.
            paired = [
                run - bare
                for run, bare in zip(result["cpu_us_runs"], bare_cpu[framework], strict=False)
            ]
            result["added_cpu_us"] = statistics.median(paired)
            result["added_cpu_us_runs"] = paired
    return results


def _versions() -> dict[str, str]:
    names = (
        "segment-web", "django", "flask", "starlette", "gunicorn", "uvicorn",
        "segment-analytics-python", "opentelemetry-sdk", "posthog", "sentry-sdk",
    )  # fmt: skip
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# -- the report -------------------------------------------------------------------


def lost(result: dict[str, Any]) -> bool:
    """An integration that neither delivered one event per request it answered nor
    reported the missing ones as dropped."""
    accounted = result["delivered"] + result["dropped"]
    return result["variant"] != "bare" and accounted != result["owed"]


def print_report(measured: dict[str, Any]) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in measured["versions"].items())
    print(
        f"{measured['rounds']} round(s) of {measured['seconds_per_run']:g} s per server; "
        f"{measured['cpus']} CPUs, load average at the end "
        f"{' '.join(f'{x:.2f}' for x in measured['load_average'])}; "
        f"{measured['elapsed']:.0f} s; "
        + (
            "returning visitors"
            if measured["returning_visitors"]
            else "every request a new visitor"
        )
        + (
            "; segment-web's view calls track() once, the floor sends a track too"
            if measured["track_per_request"]
            else ""
        )
        + ("; a browser's headers" if measured.get("browser_headers") else "")
        + f"\n{versions}\n"
    )
    header = (
        f"{'framework':<10}{'integration':<31}{'req/s':>7}{'vs bare':>8}{'CPU µs/req':>12}"
        f"{'added':>8}{'(per round)':>16}{'(runs)':>14}{'POSTs':>8}{'bytes sent':>12}"
        "   delivered"
    )
    print(header)
    print("-" * len(header))
    for result in measured["results"]:
        runs = result["cpu_us_runs"]
        spread = f"({min(runs):.0f}-{max(runs):.0f})"
        added = "" if result["variant"] == "bare" else _signed(result.get("added_cpu_us"))
        paired = result.get("added_cpu_us_runs")
        added_spread = (
            f"({min(paired):+.0f} to {max(paired):+.0f})"
            if paired and result["variant"] != "bare"
            else ""
        )
        delivered = ""
        if result["variant"] != "bare":
            delivered = f"{result['delivered']:,}/{result['owed']:,}"
            if result["dropped"]:
                delivered += f" ({result['dropped']:,} dropped)"
            if lost(result):
                delivered += " LOST"
        print(
            f"{result['framework']:<10}{LABELS[result['variant']]:<31}{result['rps']:>7.0f}"
            f"{result.get('ratio', 0):>8.2f}{result['cpu_us']:>12.0f}{added:>8}{added_spread:>16}"
            f"{spread:>14}"
            f"{result['posts']:>8,}{result['bytes']:>12,}   {delivered}"
        )
    print()
    print(markdown_summary(measured["results"]))
    relative = relative_summary(measured["results"])
    if relative:
        print()
        print(relative)
    if measured["receiver_errors"]:
        print(f"! the receiver refused {measured['receiver_errors']} request(s) it could not read")


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.0f}"


def markdown_summary(results: list[dict[str, Any]]) -> str:
    """Added worker CPU per request, one column per framework (a Markdown table)."""
    frameworks = list(dict.fromkeys(r["framework"] for r in results))
    variants = [v for v in dict.fromkeys(r["variant"] for r in results) if v != "bare"]
    cell: dict[tuple[str, str], dict[str, Any]] = {
        (r["framework"], r["variant"]): r for r in results
    }
    lines = _table_head("added worker CPU per request", frameworks)
    for variant in variants:
        cells = []
        for framework in frameworks:
            result = cell.get((framework, variant))
            added = None if result is None else result.get("added_cpu_us")
            cells.append("n/a" if added is None else f"{added:+,.0f} µs")
        lines.append(f"| {LABELS[variant]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def relative_summary(results: list[dict[str, Any]]) -> str:
    """Each derived variant's added CPU over its base's, in the same run (a Markdown table)."""
    frameworks = list(dict.fromkeys(r["framework"] for r in results))
    added = {(r["framework"], r["variant"]): r.get("added_cpu_us") for r in results}
    derived = [v for v in dict.fromkeys(r["variant"] for r in results) if v in DERIVED]
    if not derived:
        return ""
    lines = _table_head("added worker CPU, relative to its base in this run", frameworks)
    for variant in derived:
        base = base_variant(variant)
        cells = []
        for framework in frameworks:
            mine, theirs = added.get((framework, variant)), added.get((framework, base))
            if mine is None or theirs is None or theirs <= 0:
                cells.append("n/a")
            else:
                cells.append(f"{mine / theirs:.2f}" + TIMES)
        lines.append(f"| {LABELS[variant]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table_head(title: str, frameworks: Sequence[str]) -> list[str]:
    """The first two lines of a Markdown table with one column per framework."""
    columns = " | ".join(FRAMEWORK_LABELS[f] for f in frameworks)
    return [f"| {title} | {columns} |", "| --- |" + " --- |" * len(frameworks)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1.5 s: a smoke run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="per server and round")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds per server, first")
    parser.add_argument("--budget", type=float, default=900.0, help="no new round after this")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), type=_names(FRAMEWORKS))
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        type=_names((*VARIANTS, *DERIVED)),
        help=f"default: all but {', '.join(DERIVED)}",
    )
    parser.add_argument(
        "--option",
        metavar="NAME=JSON",
        action="append",
        default=[],
        help="an option for segment-web, e.g. --option flush_at=100 (repeatable)",
    )
    parser.add_argument(
        "--returning",
        action="store_true",
        help="every request carries an ajs_anonymous_id cookie (default: a new visitor each)",
    )
    parser.add_argument(
        "--track",
        action="store_true",
        help="segment-web's view also calls request.analytics.track() once; the floor, a track",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="every request carries the headers of Chrome following a link of the site "
        "(default: a Host, a User-Agent and an Accept line)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        args.option = {
            name: json.loads(value) for name, _, value in (o.partition("=") for o in args.option)
        }
    except ValueError as error:
        parser.error(f"--option takes NAME=JSON: {error}")
    os.environ["BENCH_SEGMENT_OPTIONS"] = json.dumps(args.option)
    os.environ["BENCH_TRACK"] = "1" if args.track else ""
    args.cookie = RETURNING_COOKIE if args.returning else ""
    if args.quick:
        args.rounds, args.seconds, args.warmup = 1, 1.5, 0.5
    if "bare" not in args.variants:
        args.variants = ["bare", *args.variants]
    if min(args.rounds, args.seconds) <= 0:
        parser.error("--rounds and --seconds must be positive")
    return args


def _names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"choose from {', '.join(allowed)} (comma-separated), got {text!r}"
            )
        return [name for name in allowed if name in names]

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    missing = missing_packages(args.frameworks, args.variants)
    if missing:
        sys.exit(
            f"missing: {', '.join(missing)}. Install the benchmark's dependencies with "
            "pip install -e '.[bench]'"
        )
    measured = measure(args)
    if args.json:
        print(json.dumps(measured, indent=2))
    else:
        print_report(measured)
    dropped = [r for r in measured["results"] if r["dropped"]]
    if dropped and not args.json:
        print(
            "dropped: events the integration discarded itself and reported so (Sentry's "
            "client reports: its transport queue holds 100 envelopes, one POST each)"
        )
    failed = [r for r in measured["results"] if lost(r) or r["errors"]]
    if failed:
        sys.exit(
            "not every event reached the receiver or was reported dropped, or requests "
            "failed: " + ", ".join(f"{r['framework']}-{r['variant']}" for r in failed)
        )


if __name__ == "__main__":
    main()
