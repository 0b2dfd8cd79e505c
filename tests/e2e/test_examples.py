"""The example apps on their real servers, visited the way the demo visits them.

Each app runs from its own directory under gunicorn or uvicorn, with the test's
collector as its Segment host, gets a scripted visit over HTTP and is stopped
with SIGTERM. Every event the visit should cause must then be at the collector
exactly once, valid, and joined to one visitor: the anonymous id of the
``ajs_anonymous_id`` cookie before and after signing in, the user's id after.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from example_projects._servers import EXAMPLES, Example, serving
from example_projects._visits import VISITS, check
from segment_core.collector import CollectorHandle
from segment_core.masking import masked_with_fingerprint

pytestmark = pytest.mark.slow

# gunicorn exits with 0 after a graceful stop; uvicorn re-raises the signal it handled.
GRACEFUL_EXITS = (0, -signal.SIGTERM)


def _cases() -> list[Any]:
    cases = []
    for example in EXAMPLES:
        name = f"{example.name}-{example.server}"
        if example.worker:
            cases.append(pytest.param(example, True, id=f"{name}-celery"))
        cases.append(pytest.param(example, False, id=name))
    return cases


# The shop with a broker sends its order confirmation from its Celery worker;
# without one, from a thread of the web process.
@pytest.mark.parametrize(("example", "with_worker"), _cases())
def test_visit_arrives_once_and_joined(
    example: Example,
    with_worker: bool,
    segment_collector: CollectorHandle,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    broker = request.getfixturevalue("redis_db") if with_worker else None
    with serving(example, segment_collector.url, tmp_path, broker) as server:
        visit = VISITS[example.name](server)
        status = server.stop()
        assert status in GRACEFUL_EXITS, server.log()

    # Delivered before the server exited; the wait only bounds a slow collector.
    events = segment_collector.wait_for(len(visit.expected), timeout=10)
    assert check(visit, events) == [], server.log()
    assert {event["writeKey"] for event in events} == {masked_with_fingerprint(example.write_key)}
    summary = segment_collector.summary()
    assert (summary["total"], summary["bad"], summary["duplicates"]) == (len(events), 0, 0)
    messages = [event["message"] for event in events]
    assert len({m["messageId"] for m in messages}) == len(messages) == len(visit.expected)

    # One visitor: the cookie's anonymous id on every call, before and after signing in.
    anonymous = [m for m in messages if m.get("userId") is None]
    signed_in = [m for m in messages if m.get("userId") is not None and m["type"] != "alias"]
    assert anonymous and signed_in
    assert {m["anonymousId"] for m in anonymous + signed_in} == {visit.anonymous_id}
    assert len({m["userId"] for m in signed_in}) == 1
    SPECIFIC[example.name](messages)


def _one(messages: list[dict[str, Any]], kind: str, name: str = "") -> dict[str, Any]:
    [message] = [
        m for m in messages if m["type"] == kind and name in ("", m.get("event"), m.get("name"))
    ]
    return message


def _django_shop(messages: list[dict[str, Any]]) -> None:
    identify = _one(messages, "identify")
    assert identify["traits"]["username"] == "ada"
    assert identify["traits"]["email"] == "ada@example.com"
    added = _one(messages, "track", "Product Added")["properties"]
    assert added == {
        "product_id": "p-102",
        "sku": "GRI-HA-2",
        "name": "Hand grinder",
        "category": "Brewing",
        "price": 89.5,
        "quantity": 2,
        "currency": "EUR",
    }
    order = _one(messages, "track", "Order Completed")
    assert order["userId"] == identify["userId"]
    properties = order["properties"]
    assert properties["order_id"].startswith("ord_")
    assert properties["revenue"] == 179.0
    assert properties["total"] == round(179.0 + properties["shipping"], 2)
    assert properties["currency"] == "EUR"
    assert [p["product_id"] for p in properties["products"]] == ["p-102"]
    # Sent by the Celery task (or the thread): for the visitor who ordered.
    confirmation = _one(messages, "track", "Order Confirmation Sent")
    assert confirmation["properties"]["order_id"] == properties["order_id"]
    assert confirmation["userId"] == order["userId"]
    assert confirmation["anonymousId"] == order["anonymousId"]
    for key in ("ip", "userAgent", "page"):
        assert confirmation["context"][key] == order["context"][key], key
    # The page call carries the route's name and the Spec's page fields.
    page = _one(messages, "page", "shop:product_detail")
    assert page["properties"]["path"] == "/products/hand-grinder/"


def _flask_blog(messages: list[dict[str, Any]]) -> None:
    alias = _one(messages, "alias")
    identify = _one(messages, "identify")
    assert alias["userId"] == identify["userId"]
    assert alias["previousId"] == identify["anonymousId"]
    assert identify["traits"]["username"].startswith("grace-")
    comment = _one(messages, "track", "Comment Posted")
    assert comment["userId"] == identify["userId"]
    assert comment["properties"]["post_id"] == "events-at-shutdown"


def _fastapi_api(messages: list[dict[str, Any]]) -> None:
    # The API's routes send no page calls: only the HTML page does.
    assert [m["properties"]["path"] for m in messages if m["type"] == "page"] == ["/"]
    # Created anonymously, then with the bearer token: the user_id hook's answer.
    created = sorted(str(m.get("userId")) for m in messages if m.get("event") == "Todo Created")
    assert created == ["None", "user-ada"]
    assert _one(messages, "track", "Todo Completed")["userId"] == "user-ada"


SPECIFIC = {"django_shop": _django_shop, "flask_blog": _flask_blog, "fastapi_api": _fastapi_api}
