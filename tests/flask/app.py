"""The Flask app the tests drive: an app factory with one view per situation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, jsonify, redirect, request
from flask_login import LoginManager, UserMixin, login_user

from segment_core.scope import analytics

STATIC = Path(__file__).parent / "static"


class ViewBug(Exception):
    pass


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def create_app(config: dict[str, Any] | None = None, *, name: str = "shop") -> Flask:
    """A plain app, without Segment: each test adds the extension its own way."""
    app = Flask(name, static_folder=str(STATIC))
    # SEGMENT_SEND_IN_TESTS: these tests check what reaches the collector.
    app.config.update(
        {
            "TESTING": True,
            "SECRET_KEY": "segment-flask-tests",
            "SEGMENT_SEND_IN_TESTS": True,
            **(config or {}),
        }
    )

    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        if user_id == "broken":
            raise RuntimeError("the user database is down")
        return User(user_id)

    @app.get("/")
    def home() -> str:
        return "home"

    @app.get("/products/<int:pk>")
    def product(pk: int) -> str:
        return f"product {pk}"

    @app.get("/tags/<tag>")
    def tag(tag: str) -> str:
        return tag

    @app.get("/redirect")
    def go_home() -> Any:
        return redirect("/")

    @app.get("/gone")
    def gone() -> str:
        abort(404)

    @app.get("/boom")
    def boom() -> str:
        raise ViewBug("the view failed")

    @app.route("/track", methods=["GET", "POST"])
    def track() -> str:
        request.analytics.track("Clicked Buy", {"sku": "A1"})  # type: ignore[attr-defined]
        assert analytics() is request.analytics  # type: ignore[attr-defined]
        return "tracked"

    @app.get("/scope")
    def scope_track() -> str:
        analytics().track("Scoped", {"via": "contextvar"})
        return "ok"

    @app.get("/async-track")
    async def async_track() -> str:
        await asyncio.sleep(0)
        analytics().track("Clicked Buy", {"sku": "async"})
        assert analytics() is request.analytics  # type: ignore[attr-defined]
        return "tracked"

    @app.get("/identify")
    def identify() -> str:
        request.analytics.identify("u-77", {"plan": "pro"})  # type: ignore[attr-defined]
        request.analytics.track("Upgraded")  # type: ignore[attr-defined]
        return "ok"

    @app.get("/whoami")
    def whoami() -> Any:
        bound = request.analytics  # type: ignore[attr-defined]
        return jsonify(user_id=bound.user_id, anonymous_id=bound.anonymous_id)

    @app.get("/login/<user_id>")
    def login(user_id: str) -> str:
        login_user(User(user_id))
        return "logged in"

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            yield "one "
            yield "two"

        return Response(chunks(), mimetype="text/html")

    @app.get("/own-cookie")
    def own_cookie() -> Response:
        response = Response("ok")
        response.set_cookie("ajs_anonymous_id", "chosen-by-the-view")
        return response

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.get("/api/orders")
    def orders() -> Any:
        request.analytics.track("Listed Orders")  # type: ignore[attr-defined]
        return jsonify(orders=[])

    @app.get("/invite/<key>")
    def invite(key: str) -> str:
        request.analytics.track("Opened Invite")  # type: ignore[attr-defined]
        return "invite"

    @app.get("/cached")
    def cached() -> Response:
        return Response(status=304)

    @app.get("/raw/<path:rest>")
    def raw(rest: str) -> str:
        return "raw"

    admin = Blueprint("admin", __name__, url_prefix="/backoffice")

    @admin.get("/")
    def admin_index() -> str:
        return "admin"

    app.register_blueprint(admin)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(b"\x00\x00\x01\x00", mimetype="image/x-icon")

    return app


# -- hooks referenced by dotted path -------------------------------------------------


def broken(*args: object) -> bool:
    raise RuntimeError("bug in a user hook")


def only_home(request: Any, response: Any) -> bool:
    return bool(request.path == "/")


def header_user(request: Any) -> str | None:
    value = request.headers.get("X-User")
    return str(value) if value else None


def unencodable(request: Any, response: Any) -> dict[str, Any]:
    return {"when": object()}  # not JSON: the page call cannot be encoded
