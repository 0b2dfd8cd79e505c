"""Work done in a thread a Flask view starts with ``copy_current_request_context``.

Flask hands such a thread the request, not the request's context variables: the
visitor is found through ``request.analytics``, never bound there. The job
adapters' tests publish from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, copy_current_request_context

import segment_core
from segment_core import Client
from segment_flask import SegmentFlask

T = TypeVar("T")

#: The visitor's ``ajs_anonymous_id`` cookie and User-Agent.
ANONYMOUS_ID = "3f1c2a34-6d4e-4a8e-9f00-1234567890ab"
USER_AGENT = "Mozilla/5.0 (request thread)"


def run_in_a_request_thread(client: Client, work: Callable[[], T]) -> T:
    """``work()``'s answer (or its exception), run in a thread that a view of an app
    sending through ``client`` starts for a visitor with a cookie."""
    outcome: list[T] = []
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # raised again in the test's own thread
            errors.append(error)

    app = Flask(__name__)
    default_before = segment_core.default_client
    SegmentFlask(app, client=client)  # which offers its client as the default one
    segment_core.default_client = default_before

    @app.post("/order")
    def order() -> str:
        thread = threading.Thread(target=copy_current_request_context(in_thread))
        thread.start()
        thread.join(60)
        return "ok"

    browser = app.test_client()
    browser.set_cookie("ajs_anonymous_id", ANONYMOUS_ID)
    assert browser.post("/order", headers={"User-Agent": USER_AGENT}).status_code == 200
    if errors:
        raise errors[0]
    [answer] = outcome
    return answer
