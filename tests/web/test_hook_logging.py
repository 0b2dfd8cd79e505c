"""What the log says of a user hook: the type of a wrong answer, never its value;
one traceback per request for a ``user_id`` hook that keeps raising; the path as
the events carry it (a secret route value redacted)."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from flask import Flask

import segment_core
from segment_core.client import Client
from segment_core.web import RequestTracker, WebOptions
from segment_flask import SegmentFlask
from tests.flask.app import create_app
from tests.web.conftest import make_request

Messages = list[dict[str, Any]]

HTML = "text/html; charset=utf-8"
EMAIL = "alice.secret@example.com"
INVITE_KEY = "k3yOfTheInvite"


@dataclasses.dataclass
class Traits:
    email: str
    plan: str


class Person:
    """A framework's user: its ``repr`` names the user by e-mail, as Django's does."""

    email = EMAIL

    def __repr__(self) -> str:
        return f"<Person: {self.email}>"


class LazyProperties(Mapping[str, Any]):
    """A mapping whose values are looked up late, and whose lookup fails."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("the lookup failed")

    def __iter__(self) -> Iterator[str]:
        return iter(["plan"])

    def __len__(self) -> int:
        return 1


@pytest.fixture
def collector_client(segment_collector: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A real client sending to the test's collector (the default client left as it was)."""
    monkeypatch.setattr(segment_core, "default_client", segment_core.default_client)
    client = Client("test-key", host=segment_collector.url)
    yield client
    client.shutdown(timeout=5)


@pytest.fixture
def flask_app(collector_client: Client) -> Callable[..., Flask]:
    """``flask_app(SEGMENT_X=...)``: a Flask app whose extension sends to the collector."""

    def make(**config: Any) -> Flask:
        app = create_app(config)
        SegmentFlask(app, client=collector_client)
        return app

    return make


@pytest.fixture
def received(collector_client: Client, segment_collector: Any) -> Callable[[], Messages]:
    """Flush the client, then return what the collector received, oldest first."""

    def received() -> Messages:
        assert collector_client.flush(timeout=10), "the client did not flush in time"
        return [e["message"] for e in segment_collector.events()]

    return received


def tracker(client: Client, options: WebOptions, **request: Any) -> RequestTracker:
    return RequestTracker(client, options, make_request(**request))


def web_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "segment.core.web" and r.levelno == level]


# -- a wrong answer is logged by its type ------------------------------------------------


def test_a_user_id_hook_answering_a_user_object_is_logged_by_its_type(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    t = tracker(client, WebOptions(user_id=lambda request: Person()))
    with caplog.at_level(logging.ERROR, logger="segment"):
        t.analytics.track("Viewed")
        assert t.finish(200, content_type=HTML)
    assert [m.get("userId") for m in sent] == [None, None]
    errors = web_records(caplog, logging.ERROR)  # asked at the call and at the response
    assert [r.getMessage() for r in errors] == [
        "segment: user_id must be a string or an integer, got Person; ignored"
    ]
    assert EMAIL not in caplog.text


class Column:
    """A query's column (SQLAlchemy's ``User.id``, where ``user.id`` was meant): its
    ``==`` makes a clause that refuses to be a bool."""

    def __eq__(self, other: object) -> Any:
        return Clause()

    __hash__ = object.__hash__


class Clause:
    def __bool__(self) -> bool:
        raise TypeError("Boolean value of this clause is not defined")


def test_a_user_id_hook_answering_what_compares_to_no_bool_is_logged_and_the_page_call_made(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    t = tracker(client, WebOptions(user_id=lambda request: Column()))
    with caplog.at_level(logging.ERROR, logger="segment"):
        t.analytics.track("Viewed")
        assert t.cookie_to_set() is not None  # a new visitor's
        assert t.finish(200, content_type=HTML)
    assert [(m["type"], m.get("userId")) for m in sent] == [("track", None), ("page", None)]
    assert [r.getMessage() for r in web_records(caplog, logging.ERROR)] == [
        "segment: user_id must be a string or an integer, got Column; ignored"
    ]


def test_a_user_id_hook_answering_a_uuid_names_the_user_as_every_call_would(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    user = uuid.UUID("12345678-1234-5678-1234-567812345678")
    t = tracker(client, WebOptions(user_id=lambda request: user))
    with caplog.at_level(logging.ERROR, logger="segment"):
        t.analytics.track("Viewed")
        assert t.finish(200, content_type=HTML)
    assert [m.get("userId") for m in sent] == [str(user), str(user)]
    assert not web_records(caplog, logging.ERROR)


@pytest.mark.parametrize(
    ("options", "logged"),
    [
        ({"consent": lambda request: {"email": EMAIL}}, "consent returned dict"),
        ({"page_name": lambda request: Person()}, "page_name returned Person"),
        (
            {"page_properties": lambda request, response: [("email", EMAIL)]},
            "page_properties returned list",
        ),
    ],
    ids=["consent", "page_name", "page_properties"],
)
def test_a_page_hook_answering_the_wrong_type_is_logged_by_its_type(
    client: Client,
    sent: Messages,
    caplog: pytest.LogCaptureFixture,
    options: dict[str, Any],
    logged: str,
) -> None:
    with caplog.at_level(logging.ERROR, logger="segment"):
        tracker(client, WebOptions(**options)).finish(200, content_type=HTML)
    assert logged in caplog.text
    assert EMAIL not in caplog.text


def test_a_page_name_hook_answering_a_long_path_names_the_page_by_it_cut_as_the_context_is(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/docs/" + "a" * 3000
    options = WebOptions(page_name=lambda request: request.path)
    with caplog.at_level(logging.ERROR, logger="segment"):
        assert tracker(client, options, path=path, route_name="docs").finish(200, content_type=HTML)
    [page] = sent
    assert page["name"] == page["properties"]["path"] == path[:2048]
    assert not web_records(caplog, logging.ERROR)


def test_a_page_name_hook_answering_a_name_too_long_names_the_page_by_it_cut(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    # The path as Flask, Django and Starlette decode it: no longer the wire path.
    path = "/docs/caf%C3%A9/" + "a" * 3000
    options = WebOptions(page_name=lambda request: "/docs/café/" + "a" * 3000)
    with caplog.at_level(logging.ERROR, logger="segment"):
        assert tracker(client, options, path=path, route_name="docs").finish(200, content_type=HTML)
    [page] = sent
    assert page["name"] == page["properties"]["name"] == ("/docs/café/" + "a" * 3000)[:2048]
    assert not web_records(caplog, logging.ERROR)


@pytest.mark.parametrize(
    ("options", "logged"),
    [
        ({"identify_traits": lambda user: Traits(EMAIL, "pro")}, "identify_traits returned Traits"),
        ({"identify_on_login": lambda request, user: EMAIL}, "identify_on_login returned str"),
    ],
    ids=["identify_traits", "identify_on_login"],
)
def test_a_login_hook_answering_the_wrong_type_is_logged_by_its_type(
    client: Client,
    sent: Messages,
    caplog: pytest.LogCaptureFixture,
    options: dict[str, Any],
    logged: str,
) -> None:
    t = tracker(client, WebOptions(**options))
    with caplog.at_level(logging.ERROR, logger="segment"):
        t.identify_login("9", Person())
    assert logged in caplog.text
    assert EMAIL not in caplog.text


def test_a_page_name_that_cannot_be_sent_is_logged_and_the_route_s_name_taken(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    options = WebOptions(page_name=lambda request: "Docs \ud800")
    with caplog.at_level(logging.ERROR, logger="segment"):
        assert tracker(client, options, route_name="docs").finish(200, content_type=HTML)
    [page] = sent
    assert page["name"] == "docs"
    assert "page_name returned text that cannot be sent" in caplog.text


class Company:
    """A model object a trait may hold by mistake (``user.company``)."""


@pytest.mark.parametrize(
    "traits",
    [{"plan": "pro", "company": Company()}, {"score": float("nan")}, {"bio": "x" * 40_000}],
    ids=["object", "nan", "too-big"],
)
def test_a_login_whose_traits_cannot_be_sent_is_identified_without_them(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture, traits: dict[str, Any]
) -> None:
    # The identify joins the visitor's anonymous id to the user: the hook's failure
    # must not lose it, as page_properties' does not lose the page call.
    t = tracker(client, WebOptions(identify_traits=lambda user: traits))
    with caplog.at_level(logging.ERROR, logger="segment"):
        assert t.identify_login("9", Person()) is True
    [identify] = sent
    assert identify["userId"] == "9" and identify["anonymousId"] == t.analytics.anonymous_id
    assert "traits" not in identify or not identify["traits"]
    assert "without what identify_traits returned, which cannot be sent" in caplog.text


# -- a user_id hook that raises ------------------------------------------------------------


def failing_user_id(request: object) -> str:
    raise RuntimeError("the session store is away")


def test_a_user_id_hook_that_keeps_raising_logs_one_traceback_per_request(
    flask_app: Callable[..., Flask],
    received: Callable[[], Messages],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = flask_app(SEGMENT_USER_ID=failing_user_id)
    client = app.test_client()
    with caplog.at_level(logging.DEBUG, logger="segment"):
        for _ in range(2):
            assert client.get("/track").status_code == 200
    errors = web_records(caplog, logging.ERROR)
    assert [r.getMessage() for r in errors] == [
        "segment: the user_id hook raised; going on with the user known before"
    ] * 2
    assert all(r.exc_info is not None for r in errors)
    again = [r for r in web_records(caplog, logging.DEBUG) if "raised again" in r.getMessage()]
    assert again and all(r.exc_info is None for r in again)
    assert sorted(m["type"] for m in received()) == ["page", "page", "track", "track"]


def test_a_user_id_hook_that_raised_is_asked_again_and_taken_up(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    # A visitor with the cookie: the hook is first asked at the first call.
    answers: list[object] = [RuntimeError("the database is away")] * 2 + ["u-2"]

    def flaky(request: object) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cookie = {"ajs_anonymous_id": "b8a7c4b0-1f0c-4e1f-9d8a-0a3c1b2d3e4f"}
    t = tracker(client, WebOptions(user_id=flaky), cookies=cookie)
    with caplog.at_level(logging.ERROR, logger="segment"):
        t.analytics.track("First")  # raised: logged with the traceback
        t.analytics.track("Second")  # raised again: not at ERROR
        t.analytics.track("Third")  # answers: taken up
    assert [m.get("userId") for m in sent] == [None, None, "u-2"]
    assert len(web_records(caplog, logging.ERROR)) == 1


def test_a_login_after_the_user_id_hook_raised_logs_no_second_traceback(
    client: Client, sent: Messages, caplog: pytest.LogCaptureFixture
) -> None:
    t = tracker(client, WebOptions(user_id=failing_user_id))
    with caplog.at_level(logging.ERROR, logger="segment"):
        t.analytics.track("Viewed")
        assert t.identify_login("9", Person()) is False  # the hook names no user
    assert [m["type"] for m in sent] == ["track"]
    assert len(web_records(caplog, logging.ERROR)) == 1


# -- the path of a failed automatic page call ----------------------------------------------


def too_big(request: Any, response: Any) -> dict[str, Any]:
    return {"blob": "x" * 40_000}


def lazy_properties(request: Any, response: Any) -> Mapping[str, Any]:
    return LazyProperties()


@pytest.mark.parametrize("hook", [too_big, lazy_properties], ids=["refused", "raised"])
def test_a_failed_automatic_page_call_logs_the_path_with_its_secret_redacted(
    flask_app: Callable[..., Flask],
    received: Callable[[], Messages],
    caplog: pytest.LogCaptureFixture,
    hook: Any,
) -> None:
    app = flask_app(SEGMENT_PAGE_PROPERTIES=hook)
    with caplog.at_level(logging.ERROR, logger="segment"):
        assert app.test_client().get(f"/invite/{INVITE_KEY}").status_code == 200
    [record] = web_records(caplog, logging.ERROR)
    assert INVITE_KEY not in caplog.text
    if hook is too_big:
        assert record.getMessage().startswith(
            "segment: the automatic page call for /invite/REDACTED was sent without what "
            "page_properties returned, which cannot be sent: message is "
        )
    else:
        assert record.getMessage() == (
            "segment: page_properties returned a mapping that could not be read; ignored"
        )
    # The hook's failure: the page view is sent without what it returned.
    track, page = received()
    assert track["context"]["page"]["path"] == "/invite/REDACTED"
    assert (page["type"], page["properties"]["path"]) == ("page", "/invite/REDACTED")
    assert "blob" not in page["properties"]


def test_the_page_call_of_a_view_that_replaced_the_context_has_its_secret_redacted(
    client: Client, sent: Messages
) -> None:
    t = tracker(
        client,
        WebOptions(),
        path=f"/invite/{INVITE_KEY}/",
        path_params={"invite_key": INVITE_KEY},
        route_template="/invite/<invite_key>/",
    )
    t.analytics.context = {"locale": "en-GB"}
    assert t.finish(200, content_type=HTML)
    [page] = sent
    assert page["properties"]["path"] == "/invite/REDACTED/"
    assert INVITE_KEY not in page["properties"]["url"]
