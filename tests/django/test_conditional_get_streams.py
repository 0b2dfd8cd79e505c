"""Page calls of files and streamed pages, and of the 304s that replace them, with
``ConditionalGetMiddleware`` listed before ``SegmentMiddleware``."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.http import FileResponse, HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.test import AsyncClient, Client
from django.urls import path

from tests.django.conftest import Sent

ACCEPT_HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
NAVIGATE = {"HTTP_ACCEPT": ACCEPT_HTML["Accept"]}
LAST_MODIFIED = "Tue, 01 Apr 2025 08:00:00 GMT"
ETAG = '"feed-v1"'


def document(request: HttpRequest) -> FileResponse:
    response = FileResponse(io.BytesIO(b"<html><body>doc</body></html>"), content_type="text/html")
    response["Last-Modified"] = LAST_MODIFIED
    return response


def feed(request: HttpRequest) -> StreamingHttpResponse:
    def body() -> Iterator[str]:
        yield "<html><body>"
        yield "news"
        yield "</body></html>"

    response = StreamingHttpResponse(body(), content_type="text/html")
    response["ETag"] = ETAG
    return response


async def afeed(request: HttpRequest) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[str]:
        yield "<html><body>"
        await asyncio.sleep(0)
        yield "</body></html>"

    response = StreamingHttpResponse(body(), content_type="text/html")
    response["ETag"] = ETAG
    return response


def the_response_judged(request: HttpRequest, response: HttpResponseBase) -> dict[str, Any]:
    """A ``PAGE_PROPERTIES`` hook that queries the database, as real ones do."""
    users = User.objects.count()
    connection = connections["default"]
    if threading.current_thread() is not threading.main_thread() and connection.connection:
        # Django's test clients keep request_finished from closing this thread's
        # connection, and close() leaves an in-memory database's open: the main
        # thread's keeps the database.
        connection.connection.close()
        connection.connection = None
    return {"status": response.status_code, "streaming": response.streaming, "users": users}


urlpatterns = [
    path("doc/", document, name="doc"),
    path("feed/", feed, name="feed"),
    path("afeed/", afeed, name="afeed"),
]


@pytest.fixture(autouse=True)
def _conditional_get_first(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [
        "django.middleware.http.ConditionalGetMiddleware",
        *settings.MIDDLEWARE,
    ]


def visits(sent: Sent) -> list[tuple[str, str]]:
    """The page calls' names and anonymous ids."""
    return [(page["name"], page["anonymousId"]) for page in sent(type="page")]


def test_a_file_response_makes_its_page_call_at_once(client: Client, sent: Sent) -> None:
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    response = client.get("/doc/", **NAVIGATE)
    assert response.status_code == 200
    assert visits(sent) == [("doc", "visitor-1")]  # its body not read yet
    assert b"".join(response.streaming_content) == b"<html><body>doc</body></html>"  # type: ignore[attr-defined]
    assert visits(sent) == [("doc", "visitor-1")]  # and none more once it is closed


def test_a_304_that_replaces_a_file_response_is_a_page_view(client: Client, sent: Sent) -> None:
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    first = client.get("/doc/", **NAVIGATE)
    b"".join(first.streaming_content)  # type: ignore[attr-defined]  # closes it
    again = client.get("/doc/", HTTP_IF_MODIFIED_SINCE=LAST_MODIFIED, **NAVIGATE)
    assert again.status_code == 304
    assert visits(sent) == [("doc", "visitor-1")] * 2


def test_a_304_that_replaces_a_streamed_page_is_a_page_view(client: Client, sent: Sent) -> None:
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    first = client.get("/feed/", **NAVIGATE)
    assert b"".join(first.streaming_content) == b"<html><body>news</body></html>"  # type: ignore[attr-defined]
    # The 304 is all the visitor gets: the streamed page it replaces is never sent,
    # nor closed.
    assert client.get("/feed/", HTTP_IF_NONE_MATCH=ETAG, **NAVIGATE).status_code == 304
    assert visits(sent) == [("feed", "visitor-1")] * 2


def test_a_new_visitor_s_304_page_call_carries_the_id_of_its_cookie(
    client: Client, sent: Sent
) -> None:
    response = client.get("/feed/", HTTP_IF_NONE_MATCH=ETAG, **NAVIGATE)
    assert response.status_code == 304
    assert visits(sent) == [("feed", response.cookies["ajs_anonymous_id"].value)]


@pytest.mark.django_db  # close() sends request_finished, which checks connections
def test_a_streamed_page_makes_one_page_call_however_it_ends(client: Client, sent: Sent) -> None:
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    sent_in_full = client.get("/feed/", **NAVIGATE)
    b"".join(sent_in_full.streaming_content)  # type: ignore[attr-defined]  # closes it
    sent_in_full.close()  # a server may close it again
    client.get("/feed/", HTTP_IF_NONE_MATCH=ETAG, **NAVIGATE)  # replaced by a 304
    left = client.get("/feed/", **NAVIGATE)
    next(iter(left.streaming_content))  # type: ignore[attr-defined]
    left.close()  # the visitor left
    assert visits(sent) == [("feed", "visitor-1")] * 3


@pytest.mark.django_db
def test_the_hooks_of_a_304_s_page_call_get_the_streamed_page_it_replaced(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(PAGE_PROPERTIES=f"{__name__}.the_response_judged")
    User.objects.create_user("ada")
    assert client.get("/feed/", HTTP_IF_NONE_MATCH=ETAG, **NAVIGATE).status_code == 304
    [page] = sent(type="page")
    assert page["properties"] | {"status": 200, "streaming": True, "users": 1} == page["properties"]


@pytest.mark.django_db(transaction=True)
async def test_a_304_that_replaces_a_streamed_page_in_async_mode_is_a_page_view(
    async_client: AsyncClient, segment: Any, sent: Sent
) -> None:
    # The hook queries the database, which Django refuses in the event loop.
    segment(PAGE_PROPERTIES=f"{__name__}.the_response_judged")
    await User.objects.acreate(username="ada")
    async_client.cookies["ajs_anonymous_id"] = "visitor-1"
    response = await async_client.get("/afeed/", headers={"If-None-Match": ETAG, **ACCEPT_HTML})
    assert response.status_code == 304
    [page] = sent(type="page")
    assert (page["name"], page["anonymousId"]) == ("afeed", "visitor-1")
    assert page["properties"] | {"status": 200, "streaming": True, "users": 1} == page["properties"]
