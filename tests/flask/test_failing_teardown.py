"""A teardown function of the app (or of a blueprint) that raises stops Flask's other
teardown functions, the extension's among them: the request's visitor is unbound all
the same, and its page call is made as for any request."""

from __future__ import annotations

from contextvars import copy_context

import pytest
from flask import Blueprint, Flask, jsonify, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client as WsgiClient

from segment_core import Client
from segment_core.scope import Analytics, current
from segment_flask import SegmentFlask
from tests.flask.app import create_app
from tests.flask.conftest import Sent


class PoolError(Exception):
    pass


def shop_whose_teardown_raises(segment_client: Client) -> Flask:
    """The test app, whose own teardown raises for ``?fail=1``: registered after
    ``init_app``, it runs before the extension's."""
    app = create_app({"SEGMENT_USER_ID": lambda native: native.headers.get("X-User")})
    SegmentFlask(app, client=segment_client)

    @app.teardown_request
    def release_connection(error: BaseException | None) -> None:
        if request.args.get("fail"):
            raise PoolError("could not return the connection to the pool")

    return app


def test_the_visitor_is_unbound_when_a_teardown_raises(segment_client: Client, sent: Sent) -> None:
    app = shop_whose_teardown_raises(segment_client)
    client = app.test_client()

    def request_whose_teardown_raises() -> None:
        with pytest.raises(PoolError):
            client.get("/?fail=1", headers={"X-User": "alice"})

    # A context of its own, as a server's worker thread has: the test's stays clean.
    worker = copy_context()
    worker.run(request_whose_teardown_raises)
    assert worker.run(current) is None
    [page] = sent()  # made as the response was completed, before the teardown
    assert page["userId"] == "alice" and page["context"]["page"]["path"] == "/"


def test_the_next_request_on_the_thread_finds_no_visitor_left(
    segment_client: Client, sent: Sent
) -> None:
    shop = shop_whose_teardown_raises(segment_client)
    status = Flask("status")  # another app of the process, without Segment

    @status.get("/who")
    def who() -> object:
        bound = current()
        return jsonify(user_id=None if bound is None else bound.user_id)

    client = WsgiClient(DispatcherMiddleware(shop, {"/status": status}))

    def requests_of_one_thread() -> tuple[object, object, Analytics | None]:
        with pytest.raises(PoolError):
            client.get("/?fail=1", headers={"X-User": "alice"})
        after_alice = client.get("/status/who").json
        client.get("/", headers={"X-User": "bob"})
        after_bob = client.get("/status/who").json
        return after_alice, after_bob, current()

    after_alice, after_bob, left = copy_context().run(requests_of_one_thread)
    assert after_alice == after_bob == {"user_id": None}
    assert left is None
    assert [page["userId"] for page in sent()] == ["alice", "bob"]


def test_the_visitor_is_unbound_when_a_blueprint_teardown_raises(
    segment_client: Client, sent: Sent
) -> None:
    # Flask runs a blueprint's teardown functions before any of the app's.
    app = create_app()
    reports = Blueprint("reports", __name__, url_prefix="/reports")

    @reports.get("/")
    def reports_index() -> str:
        return "<p>reports</p>"

    @reports.teardown_request
    def close_warehouse(error: BaseException | None) -> None:
        raise PoolError("the warehouse connection is gone")

    app.register_blueprint(reports)
    SegmentFlask(app, client=segment_client)

    def request_whose_teardown_raises() -> None:
        with pytest.raises(PoolError):
            app.test_client().get("/reports/")

    worker = copy_context()
    worker.run(request_whose_teardown_raises)
    assert worker.run(current) is None
    [page] = sent()
    assert page["context"]["page"]["path"] == "/reports/"
