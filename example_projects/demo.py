"""The demo: the local collector, this project's client, and the example apps on real servers.

Run it with ``scripts/demo`` (add ``--keep-running`` to watch the live page and
try the apps in a browser). It starts the local Segment-compatible collector on
loopback, then:

1. sends a short scripted visit with the client (the calls a web app makes), and
   one deliberately malformed message, to show how the collector reports it;
2. starts each example app on a real server (gunicorn, uvicorn) pointed at the
   collector through ``SEGMENT_WRITE_KEY``/``SEGMENT_HOST``, drives a scripted
   visit over HTTP, and stops the server with SIGTERM, so that it delivers its
   events as it shuts down. The shop sends its order confirmation from a Celery
   worker, on a Redis server the demo starts on a free loopback port (each app
   its own database, so a worker takes only its own shop's tasks): the task's
   event is attributed to the visitor who ordered;

and prints what arrived, per app. It exits with status 1 when an expected event
is missing or arrived twice, an unexpected one arrived (a page call for the
Django admin, a JSON API or a browsable API page would be one), a token of the
visit (the password-reset link's, an API token) reached the collector, or any
event but the deliberate one is malformed.
No write key and no network are needed; a proxy in the environment (``HTTP_PROXY``)
is not used for the servers on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from example_projects._redis import database_url, running_redis
from example_projects._servers import EXAMPLES, Example, Server, loopback_session, serving
from example_projects._visits import SHOP_USER, VISITS, Visit, check, label
from segment_core import Client, Context, Properties, Track, Traits
from segment_core.collector import CollectorHandle, run_in_background
from segment_core.collector.__main__ import _port as port_argument
from segment_core.masking import masked_with_fingerprint

CLIENT_WRITE_KEY = "demo-write-key"
MALFORMED_ID = "demo-bad-1"
CLIENT_EVENTS = 9  # eight calls from the client's visit, one malformed message
# After SIGTERM the events are already there; a running app sends within flush_interval.
ARRIVAL_TIMEOUT = 3.0
ARRIVAL_TIMEOUT_RUNNING = 15.0
# gunicorn exits with 0 after a graceful stop; uvicorn re-raises the signal it handled.
GRACEFUL_EXITS = (0, -signal.SIGTERM)


def scripted_visit(client: Client) -> None:
    """A visitor browses, signs up, buys, and joins a team."""
    anonymous_id = "demo-visitor-7f3a"
    context = {"ip": "203.0.113.7", "userAgent": "Mozilla/5.0 (demo)", "locale": "en-GB"}
    client.page(anonymous_id=anonymous_id, name="Home", properties={"path": "/"}, context=context)
    client.page(
        anonymous_id=anonymous_id,
        category="Products",
        name="Product",
        properties={"path": "/products/42", "url": "https://shop.example/products/42"},
        context=context,
    )
    client.track(anonymous_id=anonymous_id, event="Product Viewed", properties={"sku": "SKU-42"})
    client.alias(previous_id=anonymous_id, user_id="user-1001")
    client.identify(
        "user-1001",
        Traits().set_email("ada@example.com").set_first_name("Ada").set_plan("pro"),
    )
    client.enqueue(
        Track(
            user_id="user-1001",
            event="Order Completed",
            properties=Properties().set_order_id("o-1").set_revenue(42.5).set_currency("EUR"),
            context=Context(ip="203.0.113.7", extra={"source": "demo"}),
        )
    )
    client.group("user-1001", "team-9", {"name": "Analytical Engines Ltd"})
    client.screen("user-1001", name="Settings")


def send_malformed(url: str) -> None:
    """A track without an event name: accepted by the HTTP API, reported as bad."""
    bad = {"type": "track", "userId": "user-1001", "messageId": MALFORMED_ID}
    payload = {"batch": [bad], "writeKey": CLIENT_WRITE_KEY}
    with loopback_session() as http:
        http.post(f"{url}/v1/batch", json=payload, timeout=10)


def client_demo(collector: CollectorHandle) -> bool:
    """Part 1: the client on its own. True when all arrived as expected."""
    client = Client(CLIENT_WRITE_KEY, host=collector.url)
    scripted_visit(client)
    delivered = client.shutdown(timeout=10)
    send_malformed(collector.url)
    collector.wait_for(CLIENT_EVENTS)
    events = [
        e
        for e in collector.events(limit=1000)
        if e["writeKey"] == masked_with_fingerprint(CLIENT_WRITE_KEY)
    ]
    print("\n1. The client, sending a scripted visit and one malformed message:\n")
    print(event_table(events))
    print(f"\n  client: delivered={delivered} stats={client.stats()}")
    unexpected_bad = [e for e in events if e["status"] != "good" and e["messageId"] != MALFORMED_ID]
    return delivered and len(events) == CLIENT_EVENTS and not unexpected_bad


@dataclass
class Run:
    """One example app's turn: its server, the visit, and what came of it."""

    example: Example
    server: Server | None = None
    visit: Visit | None = None
    seconds: float = 0.0
    exit_status: int | None = None
    error: str | None = None


def run_example(
    example: Example,
    collector: CollectorHandle,
    data_dir: Path,
    keep: bool,
    stack: contextlib.ExitStack,
    broker_url: str | None = None,
) -> Run:
    """Serve ``example``, visit it, and (unless ``keep``) stop it with SIGTERM."""
    run = Run(example)
    started = time.monotonic()
    try:
        run.server = stack.enter_context(serving(example, collector.url, data_dir, broker_url))
        run.visit = VISITS[example.name](run.server)
        if not keep:
            run.exit_status = run.server.stop()
            if run.exit_status not in GRACEFUL_EXITS:
                run.error = f"exit status {run.exit_status} after SIGTERM:\n{run.server.log()}"
    except (RuntimeError, KeyError, requests.RequestException) as exc:
        log = run.server.log() if run.server is not None else ""
        run.error = f"{type(exc).__name__}: {exc}\n{log}"
    run.seconds = time.monotonic() - started
    return run


def arrived(
    collector: CollectorHandle, run: Run, timeout: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """The app's events (told apart by its write key) and the problems with them.

    Polls until nothing is missing or ``timeout`` has passed.
    """
    assert run.visit is not None
    deadline = time.monotonic() + timeout
    while True:
        events = [
            e
            for e in collector.events(limit=10_000)
            if e["writeKey"] == masked_with_fingerprint(run.example.write_key)
        ]
        problems = check(run.visit, events)
        if not problems or time.monotonic() > deadline:
            return events, problems
        time.sleep(0.1)


def app_report(run: Run, events: list[dict[str, Any]], problems: list[str]) -> str:
    example = run.example
    lines = [
        f"  {example.name}: {example.server} {example.target}  (write key {example.write_key!r})"
    ]
    if run.error is not None:
        # What went wrong first, then the end of the server's (and worker's) log.
        cause, *log = run.error.splitlines()
        return "\n".join([*lines, f"    ✗ {cause}", *("    " + line for line in log[-25:])])
    assert run.visit is not None
    stopped = "" if run.exit_status is None else ", stopped gracefully by SIGTERM"
    lines.append(f"    served, visited{stopped}: {run.seconds:.1f}s")
    lines.append(event_table(events, indent=4))
    if example.worker:
        lines.append(_from_the_worker(events))
    verdict = "as expected" if not problems else f"{len(problems)} problem(s):"
    lines.append(f"    {len(events)} events, {verdict}")
    if run.visit.secrets and not any("secret" in problem for problem in problems):
        lines.append(
            f"    no secret reached the collector: {len(run.visit.secrets)} token(s) of the "
            "visit (password-reset link, API token) searched in every event"
        )
    lines += [f"      ✗ {problem}" for problem in problems]
    return "\n".join(lines)


def _from_the_worker(events: list[dict[str, Any]]) -> str:
    """Whom the Celery task's event was attributed to, next to the order it confirms."""
    by_event = {e["message"].get("event"): e["message"] for e in events}
    order = by_event.get("Order Completed")
    confirmation = by_event.get("Order Confirmation Sent")
    if order is None or confirmation is None:
        return "    the order confirmation from the Celery worker did not arrive"
    same = all(
        confirmation.get(key) == order.get(key) for key in ("userId", "anonymousId")
    ) and confirmation["context"].get("ip") == order["context"].get("ip")
    return (
        "    the Celery task's 'Order Confirmation Sent' is attributed to the visitor who "
        f"ordered (userId {confirmation.get('userId')}, anonymousId "
        f"{confirmation.get('anonymousId')}, ip {confirmation['context'].get('ip')}): "
        + ("the same as 'Order Completed'" if same else "NOT the same as 'Order Completed'")
    )


def event_table(events: list[dict[str, Any]], *, indent: int = 2) -> str:
    """One line per event (in the order they happened), then counts by type."""
    pad = " " * indent
    lines = [f"{pad}{'status':6}  {'type':8}  {'event / name':24}  {'userId':10}  anonymousId"]
    ordered = sorted(events, key=lambda e: (str(e["message"].get("timestamp")), e["seq"]))
    for item in ordered:
        message: dict[str, Any] = item["message"]
        name = label(message) or str(message.get("groupId") or "")
        anonymous_id = message.get("anonymousId")
        if message.get("type") == "alias":
            anonymous_id = f"(previousId {message.get('previousId')})"
        line = (
            f"{pad}{item['status']:6}  {message.get('type', '?'):8}  {name[:24]:24}  "
            f"{str(message.get('userId') or '-')[:10]:10}  {anonymous_id or '-'}"
        )
        lines.append(line)
        lines += [f"{pad}        ↳ {reason}" for reason in item.get("reasons") or []]
    kinds = Counter(item["message"].get("type", "?") for item in events)
    lines.append(f"{pad}by type: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the collector and the apps up (Ctrl-C stops them)",
    )
    # The collector's own check: a port out of range is a usage error, not a traceback.
    parser.add_argument(
        "--port", type=port_argument, default=0, help="collector port (0: any free)"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    # SIGTERM (from `timeout`, a process manager) stops the demo like Ctrl-C does:
    # the apps it started are stopped on the way out, never left running.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args, began)
    except KeyboardInterrupt:
        print("\ndemo stopped before it finished", file=sys.stderr)
        return 128 + _stopped_by[0]
    except OSError as error:  # the port asked for is taken, ...
        if error.errno == errno.EADDRINUSE and args.port:
            print(f"demo: port {args.port} is in use (--port 0 takes a free one)", file=sys.stderr)
        else:
            print(f"demo: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, began: float) -> int:
    with contextlib.ExitStack() as stack:
        collector = stack.enter_context(run_in_background(port=args.port))
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="segment-demo-")))
        print(f"collector listening on {collector.url}")
        redis_dir = data_dir / "redis"
        redis_dir.mkdir()
        redis_url = stack.enter_context(running_redis(redis_dir))
        server_url = redis_url.rsplit("/", 1)[0]
        print(f"redis-server listening on {server_url} (each shop's Celery broker: a database)")
        ok = client_demo(collector)

        print("\n2. The example apps, each on a real server, visited over HTTP:\n")
        # A database (so queues) per app: with --keep-running both shops and their
        # workers run at once, and neither worker may take the other shop's task.
        runs = [
            run_example(
                example,
                collector,
                data_dir,
                args.keep_running,
                stack,
                broker_url=database_url(redis_url, number),
            )
            for number, example in enumerate(EXAMPLES)
        ]
        timeout = ARRIVAL_TIMEOUT_RUNNING if args.keep_running else ARRIVAL_TIMEOUT
        for run in runs:
            events, problems = arrived(collector, run, timeout) if run.visit else ([], [])
            ok = ok and run.error is None and not problems
            print(app_report(run, events, problems) + "\n")

        summary = collector.summary()
        ok = ok and summary["duplicates"] == 0 and summary["bad"] == 1
        print(
            f"collector: {summary['total']} events, good {summary['good']}, bad {summary['bad']} "
            f"(1 on purpose), duplicates {summary['duplicates']}"
        )
        print(f"demo {'passed' if ok else 'FAILED'} in {time.monotonic() - began:.1f}s")

        if args.keep_running:
            print(f"\nWatch events live at {collector.url}/")
            for run in runs:
                if run.server is not None:
                    print(f"  {run.example.label:24} {run.server.url}/")
            print(f"  (django_shop: log in as {' / '.join(SHOP_USER)}; fastapi_api: docs at /docs)")
            print("Ctrl-C stops the apps (SIGTERM: each delivers what it holds) and the collector.")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            print("\nstopping...")
    return 0 if ok else 1


#: The signal that stopped the demo: SIGINT (Ctrl-C) unless SIGTERM came.
_stopped_by = [int(signal.SIGINT)]


def _interrupt(signum: int, frame: object) -> None:
    _stopped_by[0] = signum
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
