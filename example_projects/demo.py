"""The demo: a local collector, this project's client, and a readable report.

Run it with ``scripts/demo`` (add ``--keep-running`` to watch the live page).
It starts the local Segment-compatible collector on loopback, sends a short
scripted visit with the client (the same calls a web app would make), sends
one deliberately malformed message to show how the collector reports it, and
prints what arrived. No write key and no network are needed.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections import Counter
from typing import Any

import requests

from segment_core import Client, Context, Properties, Track, Traits
from segment_core.collector import CollectorHandle, run_in_background


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
    bad = {"type": "track", "userId": "user-1001", "messageId": "demo-bad-1"}
    requests.post(f"{url}/v1/batch", json={"batch": [bad], "writeKey": "demo"}, timeout=10)


def report(collector: CollectorHandle) -> str:
    events = collector.events(limit=1000)
    summary = collector.summary()
    lines = ["", "What arrived at the local collector:", ""]
    lines.append(f"  {'status':6}  {'type':8}  {'event / name':22}  {'userId':10}  anonymousId")
    for item in events:
        message: dict[str, Any] = item["message"]
        label = message.get("event") or message.get("name") or message.get("groupId") or ""
        lines.append(
            f"  {item['status']:6}  {message.get('type', '?'):8}  {str(label)[:22]:22}  "
            f"{str(message.get('userId') or '')[:10]:10}  {message.get('anonymousId') or ''}"
        )
        for reason in item.get("reasons") or []:
            lines.append(f"          ↳ {reason}")
    kinds = Counter(item["message"].get("type", "?") for item in events)
    lines += [
        "",
        "  by type: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())),
        f"  good {summary.get('good')}, bad {summary.get('bad')}, "
        f"duplicates {summary.get('duplicates')}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-running", action="store_true", help="serve the live page")
    parser.add_argument("--port", type=int, default=0, help="collector port (0: any free)")
    args = parser.parse_args(argv)

    with run_in_background(port=args.port) as collector:
        print(f"collector listening on {collector.url}")
        client = Client("demo-write-key", host=collector.url)
        scripted_visit(client)
        delivered = client.shutdown(timeout=10)
        send_malformed(collector.url)
        collector.wait_for(9)  # eight calls from the visit, one malformed message
        print(report(collector))
        print(f"\n  client: delivered={delivered} stats={client.stats()}")
        if args.keep_running:
            print(f"\nWatch events live at {collector.url}/  (Ctrl-C to stop)")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
