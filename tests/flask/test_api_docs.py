"""API docs served by Flask-RESTX and Flask-Smorest: never page views.

Each is recognised by the module that made its views and blueprints; the apps here
are shaped as theirs are (the packages themselves are used where installed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Blueprint, Flask
from flask.views import MethodView

from tests.flask.conftest import MakeApp, Sent

NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HERE = str(Path(__file__).parent)
View = TypeVar("View", bound=Callable[..., Any])


def pages(sent: Sent) -> list[dict[str, Any]]:
    return [m for m in sent() if m["type"] == "page"]


def made_in(module: str, view: View) -> View:
    """``view`` as if its package defined it (a view's ``__module__`` says which)."""
    view.__module__ = module
    return view


class RestxApi:
    """Flask-RESTX's ``Api``: its Swagger UI is a method of it, ``render_doc``."""

    def render_doc(self) -> str:
        return "<html><body>Swagger UI</body></html>"

    render_doc = made_in("flask_restx.api", render_doc)


class SwaggerView(MethodView):
    """Flask-RESTX's view of an ``Api``'s ``swagger.json``."""

    __module__ = "flask_restx.api"

    def get(self) -> str:
        return "<html><body>the spec, as a browser may ask for it</body></html>"


def add_restx_docs(app_or_blueprint: Flask | Blueprint) -> None:
    """An ``Api``'s docs and spec, as Flask-RESTX adds them to an app or a blueprint."""
    app_or_blueprint.add_url_rule("/docs", "doc", RestxApi().render_doc)
    app_or_blueprint.add_url_rule("/swagger.json", view_func=SwaggerView.as_view("specs"))


def test_flask_restx_docs_on_the_app_and_in_a_blueprint(make_app: MakeApp, sent: Sent) -> None:
    app = make_app()
    add_restx_docs(app)
    api = Blueprint("api", __name__, url_prefix="/api")
    add_restx_docs(api)
    api.add_url_rule("/welcome", "welcome", lambda: "<p>an HTML page of the API</p>")
    app.register_blueprint(api)
    # The blueprint Flask-RESTX registers for the Swagger UI's own files.
    files = Blueprint("restx_doc", "flask_restx.apidoc", root_path=HERE)
    files.add_url_rule("/swaggerui/index.html", "page", lambda: "<p>swagger ui</p>")
    app.register_blueprint(files)
    # The app's own pages, whatever their endpoints are called.
    app.add_url_rule("/doc", "doc_page", lambda: "<p>our docs</p>")
    guide = Blueprint("guide", __name__)
    guide.add_url_rule("/guide", "doc", lambda: "<p>guide</p>")
    app.register_blueprint(guide)
    client = app.test_client()
    visited = ["/docs", "/swagger.json", "/api/docs", "/api/swagger.json"]
    visited += ["/swaggerui/index.html", "/api/welcome", "/doc", "/guide"]
    for path in visited:
        assert client.get(path, headers=NAVIGATE).status_code == 200, path
    assert [p["name"] for p in pages(sent)] == ["api.welcome", "doc_page", "guide.doc"]


def test_flask_smorest_docs(make_app: MakeApp, sent: Sent) -> None:
    app = make_app()
    # Flask-Smorest's blueprint of the spec and its three UIs, at OPENAPI_URL_PREFIX.
    docs = Blueprint("api-docs", "flask_smorest.spec", url_prefix="/docs", root_path=HERE)
    for endpoint in ("openapi_swagger_ui", "openapi_redoc", "openapi_rapidoc"):
        docs.add_url_rule(f"/{endpoint}", endpoint, lambda: "<html><body>UI</body></html>")
    app.register_blueprint(docs)
    # A blueprint of the app's own API, made with flask_smorest.Blueprint.
    pets = Blueprint("pets", __name__, url_prefix="/pets")
    pets.add_url_rule("/", "index", lambda: "<p>pets</p>")
    app.register_blueprint(pets)
    client = app.test_client()
    for path in ("/docs/openapi_swagger_ui", "/docs/openapi_redoc", "/docs/openapi_rapidoc"):
        assert client.get(path, headers=NAVIGATE).status_code == 200, path
    client.get("/pets/", headers=NAVIGATE)
    assert [p["name"] for p in pages(sent)] == ["pets.index"]


def test_the_real_flask_restx(make_app: MakeApp, sent: Sent) -> None:
    flask_restx = pytest.importorskip("flask_restx")
    app = make_app()
    api = flask_restx.Api(app, doc="/docs")

    @api.route("/hello")
    class Hello(flask_restx.Resource):  # type: ignore[misc]
        def get(self) -> dict[str, str]:
            return {"hello": "world"}

    client = app.test_client()
    for path in ("/docs", "/swagger.json", "/hello"):
        assert client.get(path, headers=NAVIGATE).status_code == 200, path
    client.get("/", headers=NAVIGATE)
    assert [p["name"] for p in pages(sent)] == ["home"]


def test_the_real_flask_smorest(make_app: MakeApp, sent: Sent) -> None:
    flask_smorest = pytest.importorskip("flask_smorest")
    app = make_app(
        API_TITLE="Pets",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.2",
        OPENAPI_URL_PREFIX="/docs",
        OPENAPI_SWAGGER_UI_PATH="/swagger-ui",
        OPENAPI_SWAGGER_UI_URL="https://cdn.example/swagger-ui/",
        OPENAPI_REDOC_PATH="/redoc",
        OPENAPI_REDOC_URL="https://cdn.example/redoc.js",
        OPENAPI_RAPIDOC_PATH="/rapidoc",
        OPENAPI_RAPIDOC_URL="https://cdn.example/rapidoc.js",
    )
    api = flask_smorest.Api(app)
    pets = flask_smorest.Blueprint("pets", __name__, url_prefix="/pets")
    pets.add_url_rule("/", "index", lambda: "<p>pets</p>")
    api.register_blueprint(pets)
    client = app.test_client()
    for path in ("/docs/swagger-ui", "/docs/redoc", "/docs/rapidoc", "/docs/openapi.json"):
        assert client.get(path, headers=NAVIGATE).status_code == 200, path
    client.get("/pets/", headers=NAVIGATE)
    assert [p["name"] for p in pages(sent)] == ["pets.index"]
