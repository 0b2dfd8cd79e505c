"""Explicit calls in views, and a bug anywhere near analytics never breaking a request."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from flask import Flask, Request, abort, copy_current_request_context, g, request
from flask.sessions import SecureCookieSessionInterface

from segment_core import Client
from segment_core.scope import analytics, current, current_or_found
from segment_flask import SegmentFlask, page_tracked
from tests.flask.app import create_app
from tests.flask.conftest import MakeApp, Sent

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def test_track_in_a_view(app: Flask, sent: Sent) -> None:
    app.test_client().get("/track", headers={"User-Agent": CHROME})
    track, page = sent()
    assert track["event"] == "Clicked Buy" and track["properties"] == {"sku": "A1"}
    assert track["anonymousId"] == page["anonymousId"]
    assert track["context"]["userAgent"] == CHROME
    assert track["context"]["page"]["path"] == "/track"


def test_scope_analytics_in_a_view(app: Flask, sent: Sent) -> None:
    app.test_client().get("/scope")
    track, page = sent()
    assert track["event"] == "Scoped" and track["anonymousId"] == page["anonymousId"]
    assert current() is None  # unbound once the request is over


def test_track_in_an_async_view(app: Flask, sent: Sent) -> None:
    app.test_client().get("/async-track")
    track, page = sent()
    assert track["properties"] == {"sku": "async"}
    assert track["anonymousId"] == page["anonymousId"]


def test_identify_then_track_in_one_request(app: Flask, sent: Sent) -> None:
    app.test_client().get("/identify")
    identify, track, page = sent()
    assert identify["type"] == "identify" and identify["traits"] == {"plan": "pro"}
    assert identify["userId"] == track["userId"] == page["userId"] == "u-77"


def test_request_analytics_is_in_g(app: Flask) -> None:
    with app.test_request_context("/"):
        app.preprocess_request()
        assert g._segment is request.analytics  # type: ignore[attr-defined]
        assert current() is request.analytics  # type: ignore[attr-defined]
        app.do_teardown_request()
        assert current() is None
        assert "_segment" not in g


def test_a_view_tracks_through_g(app: Flask, sent: Sent) -> None:
    @app.get("/through-g")
    def through_g() -> str:
        g._segment.track("Seen Through g", {"n": 1})
        return "<html><body>ok</body></html>"

    app.test_client().get("/through-g")
    track, page = sent()
    assert (track["event"], track["properties"]) == ("Seen Through g", {"n": 1})
    assert track["anonymousId"] == page["anonymousId"] is not None


def test_analytics_in_a_thread_given_the_request_context(app: Flask, sent: Sent) -> None:
    # Flask copies the request's context into the thread, not its context variables.
    @app.get("/report")
    def report() -> str:
        @copy_current_request_context
        def generate() -> None:
            analytics().track("Report Generated")

        worker = threading.Thread(target=generate)
        worker.start()
        worker.join(timeout=10)
        return "<p>report</p>"

    app.test_client().get("/report")
    track, page = sent()
    assert track["event"] == "Report Generated"
    assert track["anonymousId"] == page["anonymousId"] is not None
    assert track["context"]["page"]["path"] == "/report"


def visitor_found() -> str | None:
    """A process pool's job: the anonymous id of the visitor it finds, if any."""
    found = current_or_found()
    return None if found is None else found.anonymous_id


def test_a_process_pool_forked_in_a_view_finds_no_visitor_in_its_jobs(
    app: Flask, sent: Sent
) -> None:
    # Its processes are copies of the request's thread, Flask's request context
    # included: that request's visitor is no visitor of theirs.
    found: list[str | None] = []

    @app.get("/pool")
    def pool() -> str:
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(1, mp_context=fork) as executor:
            found.append(executor.submit(visitor_found).result(timeout=60))
        found.append(visitor_found())  # the view's own
        return "<p>pooled</p>"

    app.test_client().get("/pool")
    [page] = sent()
    assert found == [None, page["anonymousId"]]


def test_teardown_functions_run_bound_whenever_registered(
    segment_client: Client, sent: Sent
) -> None:
    # Flask runs teardown functions in reverse: one registered before init_app runs
    # after those registered with it.
    app = create_app()
    seen: list[object] = []

    @app.teardown_request
    def before_init_app(error: BaseException | None) -> None:
        seen.append(current())
        analytics().track("Audited Before")

    SegmentFlask(app, client=segment_client)

    @app.teardown_request
    def after_init_app(error: BaseException | None) -> None:
        analytics().track("Audited After")

    app.test_client().get("/")
    events = {m.get("event", m["type"]): m for m in sent()}
    assert sorted(events) == ["Audited After", "Audited Before", "page"]
    assert {m["anonymousId"] for m in events.values()} == {events["page"]["anonymousId"]}
    assert seen[0] is not None  # still bound there, for what reads the binding itself
    assert current() is None


# -- bugs in user code are logged, the request goes on --------------------------------


@pytest.mark.parametrize("option", ["PAGE_FILTER", "PAGE_PROPERTIES", "PAGE_NAME", "USER_ID"])
def test_a_bug_in_a_user_hook(
    make_app: MakeApp, sent: Sent, option: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(**{f"SEGMENT_{option}": "tests.flask.app.broken"})
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        response = app.test_client().get("/")
    assert response.status_code == 200
    assert f"the {option.lower()} hook raised" in caplog.text
    assert len(sent()) == (0 if option == "PAGE_FILTER" else 1)


def test_a_page_tracked_receiver_that_raises(
    app: Flask, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    def receiver(sender: Any, message: dict[str, Any]) -> None:
        raise RuntimeError("bug in a receiver")

    with (
        page_tracked.connected_to(receiver, app),
        caplog.at_level(logging.ERROR, logger="segment.core"),
    ):
        response = app.test_client().get("/")
    assert response.status_code == 200
    assert "a receiver of the page_tracked signal raised" in caplog.text
    assert len(sent()) == 1


def test_a_page_call_that_cannot_be_sent_is_logged(
    make_app: MakeApp, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(SEGMENT_PAGE_PROPERTIES="tests.flask.app.unencodable")
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/track")
    assert response.status_code == 200 and response.get_data() == b"tracked"
    assert (
        "the automatic page call for /track was sent without what page_properties returned"
    ) in caplog.text
    track, page = sent()
    assert (track["type"], page["type"], page["properties"]["path"]) == ("track", "page", "/track")
    assert "when" not in page["properties"]


def test_an_earlier_preprocessor_failing_leaves_no_state(app: Flask, sent: Sent) -> None:
    # A url_value_preprocessor put ahead of the extension aborts: ours never runs.
    def closed(endpoint: str | None, values: dict[str, Any] | None) -> None:
        abort(503)

    app.url_value_preprocessors.setdefault(None, []).insert(0, closed)
    response = app.test_client().get("/")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers
    assert sent() == []


def test_every_before_request_function_finds_request_analytics(app: Flask, sent: Sent) -> None:
    # Even one put ahead of all others, after init_app; its answer is the page.
    def maintenance() -> str:
        request.analytics.track("Maintenance Shown")  # type: ignore[attr-defined]
        return "<p>back soon</p>"

    app.before_request_funcs.setdefault(None, []).insert(0, maintenance)
    response = app.test_client().get("/")
    assert response.get_data() == b"<p>back soon</p>"
    track, page = sent()
    assert track["event"] == "Maintenance Shown" and page["name"] == "home"
    assert track["anonymousId"] == page["anonymousId"]


def test_an_error_a_url_value_preprocessor_raises_is_handled_with_analytics(
    app: Flask, sent: Sent
) -> None:
    # Flask's URL processors pattern: the language code taken out of the values,
    # an unknown one a 404, whose handler tracks it.
    @app.url_value_preprocessor
    def pull_lang(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values and "lang" in values:
            g.lang = values.pop("lang")
            if g.lang not in ("en", "fr"):
                abort(404)

    @app.get("/<lang>/about")
    def about() -> str:
        return f"<p>about ({g.lang})</p>"

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        request.analytics.track("Page Not Found", {"path": request.path})  # type: ignore[attr-defined]
        return "<p>not found</p>", 404

    client = app.test_client()
    assert client.get("/fr/about").status_code == 200
    assert client.get("/xx/about").status_code == 404
    assert client.get("/nowhere").status_code == 404
    messages = sent()
    assert [m.get("event") or m["name"] for m in messages] == [
        "about",
        "Page Not Found",
        "Page Not Found",
    ]
    assert [m["properties"]["path"] for m in messages[1:]] == ["/xx/about", "/nowhere"]


class SessionStoreDown(SecureCookieSessionInterface):
    """A server-side session store that cannot be reached (Flask-Session's Redis away)."""

    def open_session(self, app: Flask, request: Request) -> None:
        raise ConnectionError("the session store is down")


def test_a_request_failing_before_the_preprocessors_has_analytics_in_the_error_handler(
    make_app: MakeApp, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    app.session_interface = SessionStoreDown()
    app.logger.disabled = True  # Flask logs the failure itself

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        request.analytics.track("Server Error Seen", {"path": request.path})  # type: ignore[attr-defined]
        assert analytics() is request.analytics  # type: ignore[attr-defined]
        return "<p>our own error page</p>", 500

    response = app.test_client().get("/products/7")
    assert (response.status_code, response.get_data(as_text=True)) == (
        500,
        "<p>our own error page</p>",
    )
    [track] = sent()
    assert (track["event"], track["properties"]) == ("Server Error Seen", {"path": "/products/7"})
    assert current() is None  # unbound as the request ended
