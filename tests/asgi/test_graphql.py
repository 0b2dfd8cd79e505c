"""GraphQL servers in Starlette and FastAPI apps: the IDE they show a browser is
tooling, and a query sent in the URL keeps its secrets out of the events."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount

import segment_core
from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient

strawberry = pytest.importorskip("strawberry")
strawberry_asgi = pytest.importorskip("strawberry.asgi")
strawberry_fastapi = pytest.importorskip("strawberry.fastapi")
ariadne = pytest.importorskip("ariadne")
ariadne_asgi = pytest.importorskip("ariadne.asgi")

NAVIGATE = {
    "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "sec-fetch-mode": "navigate",
    "user-agent": "Mozilla/5.0 Chrome/120",
}


@strawberry.type
class Query:
    @strawberry.field
    def account(self, reset_token: str) -> str:
        segment_core.analytics().track("Account Viewed", {"given": bool(reset_token)})
        return "ok"


schema = strawberry.Schema(query=Query)


class ContextGraphQL(strawberry_asgi.GraphQL):  # type: ignore[misc]
    """An app's own subclass, as Strawberry's guide writes one for a context."""


def ariadne_app() -> Any:
    return ariadne_asgi.GraphQL(ariadne.make_executable_schema("type Query { hello: String }"))


def shop(client: Client, **options: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(strawberry_fastapi.GraphQLRouter(schema), prefix="/graphql")
    sandbox = strawberry_fastapi.GraphQLRouter(schema, graphql_ide="apollo-sandbox")
    app.include_router(sandbox, prefix="/sandbox")
    app.mount("/ariadne", ariadne_app())
    app.mount("/context", ContextGraphQL(schema))
    app.mount("/zipped", GZipMiddleware(strawberry_asgi.GraphQL(schema)))

    @app.get("/welcome", response_class=HTMLResponse)
    def welcome() -> str:
        return "<p>welcome</p>"

    app.add_middleware(SegmentMiddleware, client=client, **options)
    return app


def page_paths(sent: Sent) -> list[str]:
    return [m["properties"]["path"] for m in sent() if m["type"] == "page"]


IDES = ("/graphql", "/sandbox", "/ariadne/", "/context/", "/zipped/")


def test_a_graphql_ide_is_tooling_as_the_docs_are(client: Client, sent: Sent) -> None:
    with TestClient(shop(client)) as http:
        for path in (*IDES, "/docs"):
            response = http.get(path, headers=NAVIGATE)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html"), path
        http.get("/welcome", headers=NAVIGATE)
    assert page_paths(sent) == ["/welcome"]


def test_a_graphql_ide_counts_again_without_the_openapi_namespace(
    client: Client, sent: Sent
) -> None:
    app = shop(client, exclude_routes=["admin"], replace_default_exclude_routes=True)
    with TestClient(app) as http:
        for path in IDES:
            http.get(path, headers=NAVIGATE)
    assert page_paths(sent) == list(IDES)


def test_a_graphql_app_mounted_in_a_starlette_app_is_tooling(client: Client, sent: Sent) -> None:
    app = SegmentMiddleware(Starlette(routes=[Mount("/graphql", ariadne_app())]), client=client)
    with TestClient(app) as http:
        assert http.get("/graphql/", headers=NAVIGATE).status_code == 200
    assert page_paths(sent) == []


def test_a_query_sent_in_the_url_keeps_its_secrets_out(client: Client, sent: Sent) -> None:
    """A GET query (Apollo's GET requests, GraphiQL's URL): its variables and the
    literals given to secret arguments, in the URL and in the next page's referrer."""
    document = "query($t: String!) { account(resetToken: $t) }"
    variables = json.dumps({"t": "SECRET-RESET", "input": {"password": "hunter2"}})
    literal = 'query { account(resetToken: "SECRET-LITERAL") }'
    app = shop(client)

    @app.get("/reset", response_class=HTMLResponse)
    def reset() -> str:
        return "<p>reset</p>"

    with TestClient(app, base_url="https://shop.example") as http:
        answer = http.get("/graphql", params={"query": document, "variables": variables})
        assert answer.json() == {"data": {"account": "ok"}}
        http.get("/graphql", params={"query": literal})
        referrer = str(answer.url)
        http.get("/reset", headers={**NAVIGATE, "referer": referrer})
    events = sent()
    tracks = [m for m in events if m["type"] == "track"]
    assert [m["event"] for m in tracks] == ["Account Viewed", "Account Viewed"]
    search = parse_qs(tracks[0]["context"]["page"]["search"][1:])
    assert json.loads(search["variables"][0]) == {
        "t": "REDACTED",
        "input": {"password": "REDACTED"},
    }
    assert search["query"] == [document]  # a variable is nothing to hide
    search = parse_qs(tracks[1]["context"]["page"]["search"][1:])
    assert search["query"] == ['query { account(resetToken: "REDACTED") }']
    [page] = [m for m in events if m["type"] == "page"]
    referred = parse_qs(urlsplit(page["properties"]["referrer"]).query)
    assert json.loads(referred["variables"][0])["t"] == "REDACTED"
    shown = json.dumps(events)
    assert "SECRET" not in shown and "hunter2" not in shown
