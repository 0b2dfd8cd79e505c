from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import logout
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)

from segment_core.scope import analytics


def page(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("ok")


def shared(request: HttpRequest) -> HttpResponse:
    """A page the app lets caches keep: its ``Cache-Control`` is the query's ``cache``."""
    response = HttpResponse("<p>the same for everyone</p>")
    if "cache" in request.GET:
        response["Cache-Control"] = request.GET["cache"]
    return response


def redirect(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/")


def to_https(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(f"https://{request.get_host()}{request.path}")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404


class ViewBug(Exception):
    pass


def boom(request: HttpRequest) -> HttpResponse:
    raise ViewBug("the view failed")


def track(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Clicked Buy", {"sku": "A1"})  # type: ignore[attr-defined]
    assert analytics() is request.analytics  # type: ignore[attr-defined]
    return HttpResponse("ok")


async def atrack(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Clicked Buy", {"sku": "A1"})  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert analytics() is request.analytics  # type: ignore[attr-defined]
    return HttpResponse("ok")


def checkout(request: HttpRequest) -> HttpResponse:
    # Values as a model's fields hold them: none of them JSON's own.
    order = {
        "total": Decimal("19.99"),
        "items": 2,
        "order_id": uuid.UUID(int=5),
        "delivery": datetime.date(2024, 1, 2),
        "paid_at": datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.timezone.utc),
        "skus": ("A1", "B2"),
    }
    request.analytics.track("Order Completed", order)  # type: ignore[attr-defined]
    request.analytics.identify("u-5", {"first_order": datetime.date(2024, 1, 1)})  # type: ignore[attr-defined]
    return HttpResponse("ok")


def identify(request: HttpRequest) -> HttpResponse:
    request.analytics.identify("u-77", {"plan": "pro"})  # type: ignore[attr-defined]
    request.analytics.track("Upgraded")  # type: ignore[attr-defined]
    return HttpResponse("ok")


def whoami(request: HttpRequest) -> JsonResponse:
    bound = request.analytics  # type: ignore[attr-defined]
    return JsonResponse({"user_id": bound.user_id, "anonymous_id": bound.anonymous_id})


async def asignout(request: HttpRequest) -> JsonResponse:
    request.analytics.track("Signing Out")  # type: ignore[attr-defined]
    await sync_to_async(logout)(request)  # alogout() is Django 5.0+
    request.analytics.track("Signed Out")  # type: ignore[attr-defined]
    return JsonResponse({"user_id": request.analytics.user_id})  # type: ignore[attr-defined]


async def asignout_alogout(request: HttpRequest) -> JsonResponse:
    """:func:`asignout` with Django 5's ``alogout()``, which sends its signal with ``asend()``."""
    from django.contrib.auth import alogout

    request.analytics.track("Signing Out")  # type: ignore[attr-defined]
    await alogout(request)
    request.analytics.track("Signed Out")  # type: ignore[attr-defined]
    return JsonResponse({"user_id": request.analytics.user_id})  # type: ignore[attr-defined]


async def adelete_account(request: HttpRequest) -> HttpResponse:
    """Django's delete() leaves request.user logged in, its pk set to None."""
    user = await request.auser()
    await sync_to_async(user.delete)()
    request.analytics.track("Account Deleted")  # type: ignore[attr-defined]
    return HttpResponse("<p>bye</p>")


async def awhoami(request: HttpRequest) -> JsonResponse:
    bound = request.analytics  # type: ignore[attr-defined]
    return JsonResponse({"user_id": bound.user_id, "anonymous_id": bound.anonymous_id})


def own_cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok")
    response.set_cookie("ajs_anonymous_id", "chosen-by-the-view")
    return response


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"one "
        yield b"two"

    return StreamingHttpResponse(chunks())


def stream_tracked(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"<p>one "
        analytics().track("Chunk Sent")  # a helper below the view, as the body is sent
        yield b"two</p>"

    return StreamingHttpResponse(chunks(), content_type="text/html")


def stream_failing(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"<p>one "
        raise ViewBug("the body failed once the page had started")

    return StreamingHttpResponse(chunks(), content_type="text/html")


def stream_left(request: HttpRequest) -> StreamingHttpResponse:
    def events() -> Iterator[bytes]:
        try:
            for number in range(50):
                yield b"data: %d\n\n" % number
        finally:  # the visitor left: the server closes the body
            analytics().track("Stream Closed")

    return StreamingHttpResponse(events(), content_type="text/event-stream")


async def astream_tracked(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"<p>one "
        await asyncio.sleep(0)
        analytics().track("Chunk Sent")
        yield b"two</p>"

    return StreamingHttpResponse(chunks(), content_type="text/html")


async def astream_failing(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"<p>one "
        await asyncio.sleep(0)
        raise ViewBug("the body failed once the page had started")

    return StreamingHttpResponse(chunks(), content_type="text/html")


async def astream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one "
        await asyncio.sleep(0)
        yield b"two"

    return StreamingHttpResponse(chunks())
