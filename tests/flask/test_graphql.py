"""GraphQL views in a Flask app: the IDE they show a browser is tooling, as API docs
are, and a query sent in the URL keeps its secrets out of the events."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask import Blueprint
from flask.views import MethodView

import segment_core
from tests.flask.conftest import MakeApp, Sent

strawberry = pytest.importorskip("strawberry")
strawberry_flask = pytest.importorskip("strawberry.flask.views")

NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, token: str | None = None) -> str:
        segment_core.analytics().track("Hello Resolved")
        return "hi"


schema = strawberry.Schema(query=Query)


class AccountGraphQLView(strawberry_flask.GraphQLView):  # type: ignore[misc]
    """An app's own subclass, as Strawberry's guide writes one for a context."""


class GraphQLServerView(MethodView):
    """graphql-server's Flask view (Flask-GraphQL's, for graphene), as that package
    defines it."""

    __module__ = "graphql_server.flask.graphqlview"

    def get(self) -> str:
        return "<html><body>GraphiQL</body></html>"


def page_names(sent: Sent) -> list[str]:
    return [m["name"] for m in sent() if m["type"] == "page"]


def test_a_graphql_views_ide_is_tooling_as_api_docs_are(make_app: MakeApp, sent: Sent) -> None:
    app = make_app()
    app.add_url_rule("/graphql", view_func=strawberry_flask.GraphQLView.as_view("graphql", schema))
    api = Blueprint("api", __name__, url_prefix="/api")
    api.add_url_rule("/graphql", view_func=AccountGraphQLView.as_view("graphql", schema=schema))
    app.register_blueprint(api)
    app.add_url_rule("/graphene", view_func=GraphQLServerView.as_view("graphene"))
    client = app.test_client()
    for path in ("/graphql", "/api/graphql", "/graphene"):
        response = client.get(path, headers=NAVIGATE)
        assert response.status_code == 200, path
        assert response.content_type.startswith("text/html"), path
    client.get("/", headers=NAVIGATE)
    assert page_names(sent) == ["home"]


def test_a_graphql_view_counts_again_without_the_openapi_namespace(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app(exclude_routes=["admin"], replace_default_exclude_routes=True)
    app.add_url_rule("/graphql", view_func=strawberry_flask.GraphQLView.as_view("graphql", schema))
    app.test_client().get("/graphql", headers=NAVIGATE)
    assert page_names(sent) == ["graphql"]


def test_a_query_in_the_url_keeps_its_secrets_out(make_app: MakeApp, sent: Sent) -> None:
    app = make_app()
    app.add_url_rule("/graphql", view_func=strawberry_flask.GraphQLView.as_view("graphql", schema))
    client = app.test_client()
    document = "query($t: String) { hello(token: $t) }"
    query = {"query": document, "variables": json.dumps({"t": "SECRET-TOKEN"})}
    response = client.get("/graphql", query_string=query, headers={"Accept": "application/json"})
    assert response.json == {"data": {"hello": "hi"}}
    [track] = sent()
    search: dict[str, Any] = parse_qs(track["context"]["page"]["search"][1:])
    assert json.loads(search["variables"][0]) == {"t": "REDACTED"}
    assert "SECRET" not in json.dumps(track)
