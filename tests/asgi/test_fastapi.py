"""The middleware in a FastAPI app: add_middleware, Depends, request.state, background
tasks, error handlers."""

# ruff: noqa: B008  (Depends() in defaults is how FastAPI declares dependencies)

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse

import segment_asgi
from segment_core import Client
from segment_core.scope import Analytics, analytics, current
from tests.asgi.asgi import http_scope, request_receiver
from tests.asgi.conftest import Sent, TestClient


def fastapi_app(client: Client, **options: Any) -> FastAPI:
    app = FastAPI()
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    def read_item(
        item_id: int, bound: Analytics = Depends(segment_asgi.analytics)
    ) -> dict[str, Any]:
        bound.track("Item Viewed", {"item_id": item_id})
        return {"item_id": item_id}

    @items.get("/{item_id}/page", response_class=HTMLResponse)
    def item_page(item_id: int, bound: Analytics = Depends(segment_asgi.analytics)) -> str:
        bound.track("Item Page Viewed", {"item_id": item_id})
        return f"<p>item {item_id}</p>"

    @app.get("/state")
    async def from_state(request: Request) -> dict[str, Any]:
        request.state.analytics.track("From State")
        assert analytics() is request.state.analytics
        return {"anonymous_id": request.state.analytics.anonymous_id}

    @app.get("/contextvar")
    async def from_contextvar() -> dict[str, Any]:
        analytics().track("From Contextvar")
        return {}

    @app.get("/identify")
    async def identify(bound: Analytics = Depends(segment_asgi.analytics)) -> dict[str, Any]:
        bound.identify("u-9", {"plan": "pro"})
        bound.track("Upgraded")
        return {}

    @app.post("/orders", status_code=201)
    async def order(
        tasks: BackgroundTasks, bound: Analytics = Depends(segment_asgi.analytics)
    ) -> dict[str, Any]:
        tasks.add_task(bound.track, "Receipt Sent")
        bound.track("Order Completed", {"revenue": 42.5})
        return {}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, bound: Analytics = Depends(segment_asgi.analytics)) -> None:
        await websocket.accept()
        bound.track("Socket Opened")
        await websocket.send_json({"anonymous_id": bound.anonymous_id})
        await websocket.close()

    app.include_router(items)
    app.add_middleware(segment_asgi.SegmentMiddleware, client=client, **options)
    return app


def test_depends_and_route_names(client: Client, sent: Sent) -> None:
    with TestClient(fastapi_app(client)) as browser:
        assert browser.get("/items/5").json() == {"item_id": 5}  # JSON: no page call
        browser.get("/items/6/page")
    json_track, track, page = sent()
    assert json_track["event"] == "Item Viewed" and json_track["properties"] == {"item_id": 5}
    assert track["event"] == "Item Page Viewed"
    assert page["name"] == "item_page"
    assert page["anonymousId"] == track["anonymousId"]


def test_page_name_template_includes_the_router_prefix(client: Client, sent: Sent) -> None:
    with TestClient(fastapi_app(client, page_name="template")) as browser:
        browser.get("/items/5/page")
    assert [m["name"] for m in sent(type="page")] == ["/items/{item_id}/page"]


def test_request_state_and_contextvar(client: Client, sent: Sent) -> None:
    with TestClient(fastapi_app(client)) as browser:
        anonymous_id = browser.get("/state").json()["anonymous_id"]
        browser.get("/contextvar")
    messages = sent()
    assert [(m["type"], m.get("event") or m.get("name")) for m in messages] == [
        ("track", "From State"),
        ("track", "From Contextvar"),  # JSON answers: no page calls
    ]
    assert {m["anonymousId"] for m in messages} == {anonymous_id}


def test_identify_then_track(client: Client, sent: Sent) -> None:
    with TestClient(fastapi_app(client)) as browser:
        browser.get("/identify")
    assert [m.get("userId") for m in sent()] == ["u-9", "u-9"]


def test_background_tasks_still_run_and_post_has_no_page(client: Client, sent: Sent) -> None:
    with TestClient(fastapi_app(client)) as browser:
        assert browser.post("/orders").status_code == 201
    assert [m["event"] for m in sent()] == ["Order Completed", "Receipt Sent"]


async def test_through_httpx_asgi_transport(client: Client, sent: Sent) -> None:
    transport = httpx.ASGITransport(app=fastapi_app(client))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as http:
        first = await http.get("/items/1/page")
        second = await http.get("/items/2/page")
    assert "ajs_anonymous_id" in first.cookies and "set-cookie" not in second.headers
    pages = sent(type="page")
    assert [p["properties"]["url"] for p in pages] == [
        "https://api.example/items/1/page",
        "https://api.example/items/2/page",
    ]
    assert pages[0]["context"]["ip"] == "127.0.0.1"
    assert {p["anonymousId"] for p in pages} == {first.cookies["ajs_anonymous_id"]}


def test_websockets_are_bound_when_asked(client: Client, sent: Sent) -> None:
    with (
        TestClient(fastapi_app(client, websockets=True)) as browser,
        browser.websocket_connect("/ws") as socket,
    ):
        anonymous_id = socket.receive_json()["anonymous_id"]
    [track] = sent()
    assert track["event"] == "Socket Opened" and track["anonymousId"] == anonymous_id


def test_websockets_pass_through_by_default(client: Client, sent: Sent) -> None:
    """Asked for analytics, the WebSocket's endpoint learns which option binds one."""
    with (
        TestClient(fastapi_app(client)) as browser,
        pytest.raises(
            RuntimeError, match=r"no Segment analytics for this WebSocket.*websockets=True"
        ),
        browser.websocket_connect("/ws"),
    ):
        pass
    assert sent() == []


def failing_checkout(handler: Any) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(Exception, handler)

    @app.get("/checkout")
    async def checkout() -> None:
        raise RuntimeError("payment backend down")

    return app


async def error_page_async(request: Request, error: Exception) -> JSONResponse:
    request.state.analytics.track("Error Shown", {"error": type(error).__name__})
    return JSONResponse({"detail": "sorry"}, status_code=500)


def error_page_sync(request: Request, error: Exception) -> JSONResponse:
    request.state.analytics.track("Error Shown", {"error": type(error).__name__})
    return JSONResponse({"detail": "sorry"}, status_code=500)


@pytest.mark.parametrize("handler", [error_page_async, error_page_sync])
def test_the_app_s_500_handler_has_the_request_s_analytics(
    client: Client, sent: Sent, handler: Any
) -> None:
    """Starlette calls it outside the app's user middleware, after this one returned."""
    app = failing_checkout(handler)
    app.add_middleware(segment_asgi.SegmentMiddleware, client=client)
    with TestClient(app, raise_server_exceptions=False) as browser:
        answer = browser.get("/checkout", headers={"Cookie": "ajs_anonymous_id=visitor-1"})
    assert answer.status_code == 500
    [track] = sent()
    assert track["event"] == "Error Shown" and track["anonymousId"] == "visitor-1"
    assert track["properties"] == {"error": "RuntimeError"}


async def no_server(message: Any) -> None:
    """A server's send, for a request whose answer nobody reads."""


async def test_a_failed_request_leaves_nothing_bound(client: Client) -> None:
    """In the caller's own task (httpx's ASGITransport runs the app so), wrapped from
    outside or added with add_middleware, whichever handler answers the error."""

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("down")

    added = failing_checkout(error_page_async)
    added.add_middleware(segment_asgi.SegmentMiddleware, client=client)
    apps = [
        segment_asgi.SegmentMiddleware(plain, client=client),
        segment_asgi.SegmentMiddleware(failing_checkout(error_page_async), client=client),
        added,
    ]
    for app in apps:
        with pytest.raises(RuntimeError, match="down"):
            await app(http_scope("/checkout"), request_receiver(), no_server)
        assert current() is None
