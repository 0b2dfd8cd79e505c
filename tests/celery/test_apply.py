"""Tasks run in this process by Celery's ``task.apply()`` (what eager mode calls).

No worker: ``apply()`` runs the task here, in the caller's context, through the
same ``task_prerun`` / ``task_postrun`` signals a worker sends. The app has a
real Redis broker, which ``apply()`` never needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from segment_celery import HEADER, SegmentCelery
from segment_core import Client, InvalidMessage
from segment_core.scope import Analytics, analytics, bound, current
from tests.request_thread import ANONYMOUS_ID, USER_AGENT, run_in_a_request_thread

pytestmark = pytest.mark.slow


@pytest.fixture
def client(segment_collector: Any) -> Iterator[Client]:
    client = Client("apply-key", host=segment_collector.url, flush_interval=3600)
    yield client
    client.shutdown(timeout=5)


@pytest.fixture
def app(redis_db: str, client: Client) -> Iterator[Celery]:
    app = Celery("apply-tests", broker=redis_db, set_as_current=False)
    SegmentCelery(app, client=client)
    yield app
    app.close()


def test_apply_gives_self_request_analytics_the_visitor_of_the_caller_or_of_its_header(
    app: Celery, client: Client, segment_collector: Any
) -> None:
    @app.task(bind=True)
    def send_receipt(self: Any, label: str) -> bool:
        self.request.analytics.track("Receipt Sent", {"label": label})
        return current() is self.request.analytics

    @app.task
    def ids_of_analytics() -> tuple[str | None, str | None]:
        found = analytics()
        return found.user_id, found.anonymous_id

    visitor = Analytics(client, user_id="user-42", anonymous_id="anon-42")
    with bound(visitor):
        assert send_receipt.apply(("caller's visitor",), throw=True).get() is True
    assert current() is None
    snapshot = Analytics(user_id="user-43", context={"ip": "203.0.113.7"}).snapshot()
    result = send_receipt.apply(("header",), headers={HEADER: snapshot}, throw=True)
    assert result.get() is True
    assert current() is None  # unbound again once the task returned
    with pytest.raises(InvalidMessage, match="user_id or an anonymous_id"):
        send_receipt.apply(("nobody",), throw=True).get()  # unbound: no visitor to act for
    for header in (None, "not a snapshot"):
        # The header names no visitor, or none that can be read: none, as for a
        # published task, for analytics() too.
        with bound(visitor), pytest.raises(InvalidMessage, match="user_id or an anonymous_id"):
            send_receipt.apply(("none named",), headers={HEADER: header}, throw=True).get()
        with bound(visitor):
            found = ids_of_analytics.apply(headers={HEADER: header}, throw=True).get()
        assert tuple(found) == (None, None)
    assert client.flush(10)
    events = segment_collector.wait_for(2, timeout=10, type="track")
    by_label = {e["message"]["properties"]["label"]: e["message"] for e in events}
    assert set(by_label) == {"caller's visitor", "header"}
    caller = by_label["caller's visitor"]
    assert (caller["userId"], caller["anonymousId"]) == ("user-42", "anon-42")
    assert by_label["header"]["userId"] == "user-43"
    assert by_label["header"]["context"]["ip"] == "203.0.113.7"


def test_apply_in_a_thread_given_a_flask_requests_context_acts_for_its_visitor(
    app: Celery, client: Client, segment_collector: Any
) -> None:
    @app.task(bind=True)
    def send_receipt(self: Any, label: str) -> str | None:
        self.request.analytics.track("Receipt Sent", {"label": label})
        return analytics().anonymous_id

    def apply_in_thread() -> str | None:
        answer: str | None = send_receipt.apply(("request thread",), throw=True).get()
        return answer

    assert run_in_a_request_thread(client, apply_in_thread) == ANONYMOUS_ID
    assert client.flush(10)
    [event] = segment_collector.wait_for(1, timeout=10, type="track")
    assert event["message"]["anonymousId"] == ANONYMOUS_ID
    assert event["message"]["context"]["userAgent"] == USER_AGENT
