"""Responses that look like pages but that the browser does not show as the page."""

from __future__ import annotations

from typing import Any

import pytest

from segment_core.client import Client
from segment_core.web import RequestTracker, WebOptions, should_track_page
from tests.web.conftest import make_request

BOOSTED = {"hx-request": "true", "hx-boosted": "true"}


def reader(headers: dict[str, str]) -> Any:
    """``response_header``: the response's headers, read as frameworks do (any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return lambda name: lowered.get(name.lower())


def tracked(request_headers: dict[str, str], response_headers: dict[str, str]) -> bool:
    return should_track_page(
        make_request(headers=request_headers),
        200,
        WebOptions(),
        content_type="text/html; charset=utf-8",
        response_header=reader(response_headers),
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"HX-Redirect": "/login"},
        {"HX-Location": '{"path": "/next", "target": "#main"}'},
        {"HX-Location": "/next"},
        {"HX-Refresh": "true"},
        {"HX-Refresh": " true "},
    ],
)
def test_an_htmx_redirect_answering_a_boosted_navigation_is_none(headers: dict[str, str]) -> None:
    assert not tracked(BOOSTED, headers)
    # Without htmx the browser shows the (empty) response, whatever headers it has.
    assert tracked({}, headers)


@pytest.mark.parametrize("value", ["false", "True", ""])
def test_an_htmx_refresh_htmx_does_not_act_on_leaves_the_page_view(value: str) -> None:
    assert tracked(BOOSTED, {"HX-Refresh": value})


def test_headers_are_read_only_for_what_would_be_a_page_view() -> None:
    asked: list[str] = []

    def response_header(name: str) -> str | None:
        asked.append(name)
        return None

    request = make_request(headers=BOOSTED)
    options = WebOptions()
    json = {"content_type": "application/json", "response_header": response_header}
    should_track_page(request, 200, options, **json)
    assert asked == []
    page = {"content_type": "text/html", "response_header": response_header}
    should_track_page(make_request(), 200, options, **page)  # no htmx: no htmx header
    assert asked == ["content-disposition"]
    asked.clear()
    should_track_page(request, 200, options, **page)
    assert asked == ["hx-redirect", "hx-location", "hx-refresh", "content-disposition"]


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment",
        'attachment; filename="report.html"',
        "Attachment;filename=report.html",
        " attachment ; filename*=UTF-8''r%C3%A9sum%C3%A9.html",
        "download; filename=report.html",  # a type the browser does not know: saved
    ],
)
def test_a_download_is_no_page_view(disposition: str) -> None:
    # The browser saves the file and stays on its page.
    assert not tracked({}, {"Content-Disposition": disposition})


@pytest.mark.parametrize(
    "disposition", ["inline", 'inline; filename="page.html"', "INLINE", "", "filename=a.html"]
)
def test_a_document_shown_inline_is_a_page_view(disposition: str) -> None:
    assert tracked({}, {"Content-Disposition": disposition})


def test_the_tracker_hands_the_reader_to_the_rule(
    client: Client, sent: list[dict[str, Any]]
) -> None:
    for response_headers in ({"HX-Redirect": "/login"}, {}):
        tracker = RequestTracker(client, WebOptions(), make_request(headers=BOOSTED))
        tracker.finish(200, content_type="text/html", response_header=reader(response_headers))
    assert [m["type"] for m in sent] == ["page"]
