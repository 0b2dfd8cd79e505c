"""The middleware in Django's async mode (ASGI), through the async test client."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import django
import pytest
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from segment_django.middleware import SegmentMiddleware
from tests.django.conftest import Sent
from tests.django.views import ViewBug


def test_the_middleware_is_a_coroutine_function_in_async_mode() -> None:
    async def get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def sync_get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert iscoroutinefunction(SegmentMiddleware(get_response))
    assert not iscoroutinefunction(SegmentMiddleware(sync_get_response))


async def test_page_call_in_async_mode(
    async_client: AsyncClient, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    acall = SegmentMiddleware.__acall__

    async def spy(self: SegmentMiddleware, request: HttpRequest) -> Any:
        calls.append(request.path)
        return await acall(self, request)

    monkeypatch.setattr(SegmentMiddleware, "__acall__", spy)
    response = await async_client.get("/products/7/?utm_medium=email", HTTP_SEC_GPC="0")
    assert calls == ["/products/7/"]
    cookie = response.cookies["ajs_anonymous_id"]
    [page] = sent()
    assert page["name"] == "product-detail"
    assert page["anonymousId"] == cookie.value
    assert page["properties"]["url"] == "http://testserver/products/7/?utm_medium=email"
    assert page["context"]["campaign"] == {"medium": "email"}
    assert page["context"]["ip"] == "127.0.0.1"


async def test_a_new_visitor_in_async_mode_leaves_the_session_alone(
    async_client: AsyncClient, sent: Sent
) -> None:
    response = await async_client.get("/")
    assert not response.asgi_request.session.accessed  # not read for the analytics
    assert response["Vary"] == "Cookie"  # for the anonymous id cookie it sets
    [page] = sent()
    assert "userId" not in page
    assert page["anonymousId"] == response.cookies["ajs_anonymous_id"].value


@pytest.mark.parametrize("url", ["/track/", "/atrack/"])
async def test_track_in_sync_and_async_views(
    async_client: AsyncClient, sent: Sent, url: str
) -> None:
    await async_client.get(url)
    track, page = sent()
    assert track["event"] == "Clicked Buy"
    assert track["anonymousId"] == page["anonymousId"]


async def test_identify_then_track(async_client: AsyncClient, sent: Sent) -> None:
    await async_client.get("/identify/")
    assert [m.get("userId") for m in sent()] == ["u-77", "u-77", "u-77"]


async def test_cookie_reused(async_client: AsyncClient, sent: Sent) -> None:
    first = await async_client.get("/")
    second = await async_client.get("/")
    assert "ajs_anonymous_id" not in second.cookies
    ids = {m["anonymousId"] for m in sent()}
    assert ids == {first.cookies["ajs_anonymous_id"].value}


async def test_no_page_for_errors(async_client: AsyncClient, sent: Sent) -> None:
    assert (await async_client.get("/missing/")).status_code == 404
    with pytest.raises(ViewBug):
        await async_client.get("/boom/")
    assert sent() == []


async def test_async_streaming_response(async_client: AsyncClient, sent: Sent) -> None:
    response = await async_client.get("/astream/")
    assert sent() == []
    body = [chunk async for chunk in response.streaming_content]  # type: ignore[attr-defined]
    assert b"".join(body) == b"one two"
    assert [m["name"] for m in sent()] == ["astream"]


async def test_a_bug_in_a_user_hook(
    async_client: AsyncClient, sent: Sent, segment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    segment(PAGE_PROPERTIES="tests.django.hooks.broken")
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        assert (await async_client.get("/")).status_code == 200
    assert "the page_properties hook raised" in caplog.text
    assert len(sent()) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hook", [None, "tests.django.hooks.user_email"])
async def test_logged_in_user_without_touching_the_lazy_user(
    async_client: AsyncClient,
    sent: Sent,
    segment: Any,
    hook: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if hook:
        segment(USER_ID=hook)
    user = await sync_to_async(User.objects.create_user)("bob", email="bob@example.com")
    # AsyncClient.aforce_login() is Django 5.0+; the sync one in a thread works on 4.2 too.
    await sync_to_async(async_client.force_login)(user)
    with caplog.at_level(logging.WARNING):
        data = (await async_client.get("/awhoami/")).json()
        await async_client.get("/")
    # Reading the lazy request.user in the event loop would raise SynchronousOnlyOperation,
    # which the middleware would log; nothing is logged.
    assert caplog.records == []
    expected = "bob@example.com" if hook else str(user.pk)
    assert data["user_id"] == expected
    assert sent()[0]["userId"] == expected


@pytest.mark.django_db(transaction=True)
async def test_a_logout_in_an_async_view_ends_the_user_for_the_rest_of_the_request(
    async_client: AsyncClient, sent: Sent
) -> None:
    user = await sync_to_async(User.objects.create_user)("bob")
    await sync_to_async(async_client.force_login)(user)
    assert (await async_client.get("/asignout/")).json() == {"user_id": None}
    signing_out, signed_out = sent()
    assert signing_out["userId"] == str(user.pk)
    assert "userId" not in signed_out and signed_out["anonymousId"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "url",
    [
        "/asignout/",
        pytest.param(
            "/asignout-alogout/",
            marks=pytest.mark.skipif(django.VERSION < (5, 0), reason="alogout() is Django 5's"),
        ),
    ],
)
async def test_a_logout_in_an_async_view_ends_the_user_the_user_id_hook_named(
    async_client: AsyncClient, sent: Sent, segment: Any, url: str
) -> None:
    # The view's calls are made in the event loop, where the hook (which may use
    # the ORM) is not asked: the logout itself says the user is gone.
    segment(USER_ID="tests.django.hooks.user_email")
    user = await sync_to_async(User.objects.create_user)("bob", "bob@example.com")
    await sync_to_async(async_client.force_login)(user)
    assert (await async_client.get(url)).json() == {"user_id": None}
    signing_out, signed_out = sent()
    assert signing_out["userId"] == "bob@example.com"
    assert "userId" not in signed_out and signed_out["anonymousId"]


@pytest.mark.skipif(django.VERSION < (5, 0), reason="request.auser() is Django 5's")
@pytest.mark.django_db(transaction=True)
async def test_an_account_deleted_in_an_async_view_keeps_its_user_id(
    async_client: AsyncClient, sent: Sent
) -> None:
    user = await sync_to_async(User.objects.create_user)("bob")
    user_id = str(user.pk)
    await sync_to_async(async_client.force_login)(user)
    assert (await async_client.get("/adelete-account/")).status_code == 200
    assert [(m["type"], m.get("userId")) for m in sent()] == [
        ("track", user_id),
        ("page", user_id),
    ]


async def test_analytics_is_bound_while_an_async_streaming_body_is_made(
    async_client: AsyncClient, sent: Sent
) -> None:
    response = await async_client.get("/astream-tracked/")
    body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]
    assert body == b"<p>one two</p>"
    track, page = sent()
    assert track["event"] == "Chunk Sent" and page["name"] == "astream-tracked"
    assert track["anonymousId"] == page["anonymousId"]


@pytest.mark.django_db(transaction=True)
async def test_hooks_that_query_the_database_work_in_async_mode(
    async_client: AsyncClient, sent: Sent, segment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The ORM refuses to run in the event loop: the hooks must not run there.
    segment(
        USER_ID="tests.django.hooks.user_from_the_database",
        PAGE_PROPERTIES="tests.django.hooks.users_counted",
    )
    user = await sync_to_async(User.objects.create_user)("bob")
    await sync_to_async(async_client.force_login)(user)
    with caplog.at_level(logging.WARNING):
        await async_client.get("/")  # a sync view
        await async_client.get("/atrack/")  # an async view's own call
    assert [r.getMessage() for r in caplog.records if r.name.startswith("segment")] == []
    messages = sent()
    assert [m.get("userId") for m in messages] == ["db-bob"] * len(messages)
    pages = [m for m in messages if m["type"] == "page"]
    assert pages and all(page["properties"]["users"] == 1 for page in pages)


@pytest.mark.django_db(transaction=True)
async def test_hooks_that_query_the_database_work_for_an_async_streamed_page(
    async_client: AsyncClient, sent: Sent, segment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The async test client closes the response in the event loop (Django's ASGI
    # handler, in a thread): the page call comes as the last chunk was sent, off it.
    segment(PAGE_PROPERTIES="tests.django.hooks.users_counted")
    await sync_to_async(User.objects.create_user)("bob")
    with caplog.at_level(logging.WARNING):
        response = await async_client.get("/astream-tracked/")
        body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]
    assert body == b"<p>one two</p>"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("segment")] == []
    track, page = sent()
    assert track["event"] == "Chunk Sent"
    assert page["name"] == "astream-tracked" and page["properties"]["users"] == 1


async def test_an_async_streamed_page_whose_body_fails_gets_its_page_call(
    async_client: AsyncClient, sent: Sent
) -> None:
    # Django's ASGI handler closes no response whose body raised.
    response = await async_client.get("/astream-failing/")
    with pytest.raises(ViewBug):
        [chunk async for chunk in response.streaming_content]  # type: ignore[attr-defined]
    assert [m["name"] for m in sent()] == ["astream-failing"]


async def _api_token() -> Token:
    """The REST framework token of a new user, api@example.com."""
    user = await sync_to_async(User.objects.create_user)("api", "api@example.com")
    token: Token = await sync_to_async(Token.objects.create)(user=user)
    return token


@pytest.mark.django_db(transaction=True)
async def test_a_user_id_hook_sees_the_user_a_drf_view_authenticates_in_async_mode(
    async_client: AsyncClient, sent: Sent, segment: Any
) -> None:
    # Django runs the sync API view in a thread: its calls ask the hook there, after
    # the token authenticated; the API client gets events with its user id alone.
    segment(USER_ID="tests.django.hooks.user_email")
    token = await _api_token()
    response = await async_client.get(
        "/app/api/orders/", headers={"Authorization": f"Token {token.key}"}
    )
    assert response.status_code == 200
    assert "ajs_anonymous_id" not in response.cookies
    [event] = sent()
    assert (event["event"], event["userId"]) == ("Listed Orders", "api@example.com")
    assert "anonymousId" not in event


@pytest.mark.django_db(transaction=True)
async def test_the_page_call_of_a_drf_view_carries_the_hooks_last_answer_in_async_mode(
    async_client: AsyncClient, sent: Sent, segment: Any
) -> None:
    segment(USER_ID="tests.django.hooks.user_email")
    token = await _api_token()
    response = await async_client.get(
        "/app/api/dashboard/",
        headers={"Authorization": f"Token {token.key}", "Accept": "text/html"},
    )
    assert "ajs_anonymous_id" not in response.cookies
    track, page = sent()
    assert (track["event"], page["type"]) == ("Opened Dashboard", "page")
    assert track["userId"] == page["userId"] == "api@example.com"
    assert "anonymousId" not in track and "anonymousId" not in page


@pytest.mark.django_db(transaction=True)
async def test_a_login_in_async_mode_is_identified_by_the_user_id_hook(
    async_client: AsyncClient, sent: Sent, segment: Any
) -> None:
    segment(USER_ID="tests.django.hooks.user_email")
    await sync_to_async(User.objects.create_user)("ann", "ann@example.com")
    response = await async_client.get(
        "/app/sign-in/", {"username": "ann"}, headers={"Accept": "text/html"}
    )
    cookie = response.cookies["ajs_anonymous_id"].value  # the visitor is joined to the user
    identify, track, page = sent()
    assert (identify["type"], track["event"], page["type"]) == ("identify", "Signed In", "page")
    assert [m["userId"] for m in (identify, track, page)] == ["ann@example.com"] * 3
    assert [m["anonymousId"] for m in (identify, track, page)] == [cookie] * 3


async def test_the_middleware_listed_twice_tracks_each_request_once_in_async_mode(
    settings: Any, sent: Sent
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "segment_django.middleware.SegmentMiddleware"]
    response = await AsyncClient().get("/atrack/")
    track, page = sent()
    assert (track["type"], page["type"]) == ("track", "page")
    assert track["anonymousId"] == page["anonymousId"]
    assert page["anonymousId"] == response.cookies["ajs_anonymous_id"].value


async def test_a_router_that_refuses_lifespan_is_flushed_when_wrapped(
    segment: Any, segment_collector: Any
) -> None:
    # Channels' ProtocolTypeRouter raises for the lifespan scope: wrapped, the
    # events a worker still holds go out as the server shuts it down.
    import segment_django
    from segment_django.asgi import flushing_at_shutdown
    from tests.asgi.asgi import lifespan

    segment(FLUSH_AT=2500, FLUSH_INTERVAL=300)

    async def router(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError(f"No application configured for scope type {scope['type']!r}")

    async with lifespan(flushing_at_shutdown(router)) as sent:
        assert segment_django.get_client().track("u1", "Before Shutdown")[0]
        assert segment_collector.events() == []
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Before Shutdown"]


async def test_other_requests_go_on_while_a_sync_mode_page_call_waits_for_segment(
    segment: Any, segment_collector: Any
) -> None:
    # Django's own ASGI handler, as a server runs it: each request in its own context.
    from django.core.handlers.asgi import ASGIHandler

    from tests.asgi.asgi import call, http_scope

    posting = threading.Event()
    delivered_at: list[float] = []

    def before_send(message: dict[str, Any]) -> dict[str, Any]:
        posting.set()
        return message

    segment_collector.faults({"delay": 2.0, "count": 1})  # the page call's POST lasts 2 s
    segment(
        SYNC_MODE=True,
        TIMEOUT=10,
        BEFORE_SEND=before_send,
        ON_SUCCESS=lambda message: delivered_at.append(time.monotonic()),
    )
    handler = ASGIHandler()
    page = asyncio.create_task(call(handler, http_scope("/")))
    assert await asyncio.to_thread(posting.wait, 10), "no page call was sent"
    [start, *_] = await call(handler, http_scope("/healthz"))  # a health check: no page call
    pinged_at = time.monotonic()
    assert start["status"] == 200
    await page
    assert delivered_at, "the page call was not delivered"
    assert pinged_at < delivered_at[0]  # /healthz did not wait for Segment's answer
    [event] = segment_collector.events()
    assert event["message"]["context"]["page"]["path"] == "/"


async def test_a_user_id_hook_that_raises_logs_one_traceback_per_request(
    async_client: AsyncClient, sent: Sent, segment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    segment(USER_ID="tests.django.hooks.broken")
    with caplog.at_level(logging.DEBUG, logger="segment.core.web"):
        assert (await async_client.get("/")).status_code == 200
    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
    assert "the user_id hook raised" in tracebacks[0].getMessage()
    assert tracebacks[0].exc_info is not None
    assert [m["type"] for m in sent()] == ["page"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(django.VERSION < (5, 0), reason="alogout() is Django 5's")
async def test_a_logout_receiver_in_an_async_view_tracks_for_the_user_logging_out(
    async_client: AsyncClient, sent: Sent
) -> None:
    def receiver(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        request.analytics.track("Logging Out")

    async def async_receiver(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        request.analytics.track("Logging Out Async")  # a task of asend()'s own

    user = await sync_to_async(User.objects.create_user)("bob")
    await sync_to_async(async_client.force_login)(user)
    user_logged_out.connect(receiver)
    user_logged_out.connect(async_receiver)
    try:
        assert (await async_client.get("/asignout-alogout/")).json() == {"user_id": None}
    finally:
        user_logged_out.disconnect(receiver)
        user_logged_out.disconnect(async_receiver)
    by_event = {m["event"]: m for m in sent()}
    assert sorted(by_event) == ["Logging Out", "Logging Out Async", "Signed Out", "Signing Out"]
    for event in ("Signing Out", "Logging Out", "Logging Out Async"):
        assert by_event[event]["userId"] == str(user.pk), event
    assert "userId" not in by_event["Signed Out"] and by_event["Signed Out"]["anonymousId"]
