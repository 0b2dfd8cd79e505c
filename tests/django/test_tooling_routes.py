"""Tooling that no namespace of the admin's or of an API's holds: the admin's docs
(``django.contrib.admindocs``, django-grappelli's) and the IDE of GraphQL views.

This module is the URLconf of its tests.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

import segment_core
from tests.django.conftest import Sent

strawberry = pytest.importorskip("strawberry")
strawberry_views = pytest.importorskip("strawberry.django.views")

NAVIGATE = {
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
    "HTTP_SEC_FETCH_MODE": "navigate",
}
HTML = "<!doctype html><title>t</title><p>ok</p>"


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, password: str | None = None, otp: str | None = None) -> str:
        segment_core.analytics().track("Hello Resolved")
        return "hi"


schema = strawberry.Schema(query=Query)


class AccountGraphQLView(strawberry_views.GraphQLView):  # type: ignore[misc]
    """An app's own subclass, as Strawberry's guide writes one for a context."""


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HTML)


def grappelli_doc(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HTML)


def grappelli_doc_tables(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HTML)


def wagtail_view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse(HTML)


# Wagtail's admin, by the names and namespaces wagtail.admin.urls gives its views.
wagtail_users = (
    [path("", wagtail_view, name="index"), path("<int:pk>/", wagtail_view, name="edit")],
    "wagtailusers_users",
)


urlpatterns = [
    path("admin/doc/", include("django.contrib.admindocs.urls")),
    path("admin/", admin.site.urls),
    # django-grappelli's docs, by the names grappelli.urls_docs gives them.
    path("grp-docs/", grappelli_doc, name="grp_doc"),
    path("grp-docs/tables/", grappelli_doc_tables, name="grp_doc_tables"),
    path("graphql/", csrf_exempt(strawberry_views.GraphQLView.as_view(schema=schema))),
    path("account/graphql/", AccountGraphQLView.as_view(schema=schema), name="account-graphql"),
    path("page/", page, name="page"),
    path("cms/", wagtail_view, name="wagtailadmin_home"),
    path("cms/pages/search/", wagtail_view, name="wagtailadmin_pages_search"),
    path("cms/users/", include(wagtail_users)),
    path("blog/", page, name="wagtail_serve"),  # the site's pages
    # Wagtail's public API, under the router's namespace its docs give.
    path("api/v2/pages/", include(([path("", page, name="listing")], "wagtailapi"))),
]


@pytest.fixture(autouse=True)
def _these_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


def page_paths(sent: Sent) -> list[str]:
    return [m["properties"]["path"] for m in sent() if m["type"] == "page"]


@pytest.mark.django_db
def test_the_admins_docs_are_the_admins(client: Client, sent: Sent, settings: Any) -> None:
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django.contrib.admindocs"]
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    for url in ("/admin/doc/", "/admin/doc/models/", "/admin/doc/views/", "/admin/doc/tags/"):
        response = client.get(url, **NAVIGATE)
        assert response.status_code == 200, url
        assert response["content-type"].startswith("text/html"), url
    for url in ("/grp-docs/", "/grp-docs/tables/", "/page/"):
        client.get(url, **NAVIGATE)
    assert page_paths(sent) == ["/page/"]


def test_wagtail_s_admin_is_the_admin_wherever_it_is_mounted(client: Client, sent: Sent) -> None:
    for url in ("/cms/", "/cms/pages/search/?q=ann%40example.com", "/cms/users/", "/cms/users/1/"):
        response = client.get(url, **NAVIGATE)
        assert response.status_code == 200, url
        assert "ajs_anonymous_id" not in response.cookies, url
    client.get("/blog/", **NAVIGATE)
    public = Client().get("/api/v2/pages/", **NAVIGATE)  # a new visitor; HTML here
    assert "ajs_anonymous_id" in public.cookies
    assert page_paths(sent) == ["/blog/", "/api/v2/pages/"]


def test_a_graphql_views_ide_is_tooling_as_api_docs_are(client: Client, sent: Sent) -> None:
    for url in ("/graphql/", "/account/graphql/"):
        response = client.get(url, **NAVIGATE)
        assert response.status_code == 200, url
        assert response["content-type"].startswith("text/html"), url
    client.get("/page/", **NAVIGATE)
    assert page_paths(sent) == ["/page/"]


def test_a_graphql_view_counts_again_without_the_openapi_namespace(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(EXCLUDE_ROUTES=["admin"], REPLACE_DEFAULT_EXCLUDE_ROUTES=True)
    client.get("/graphql/", **NAVIGATE)
    assert page_paths(sent) == ["/graphql/"]


def test_a_query_in_the_url_keeps_its_secrets_out(client: Client, sent: Sent) -> None:
    """A GET query (GraphiQL writes the same into its URL): its variables and the
    literals of secret arguments, in the calls its resolvers make and in the
    referrer of the next page."""
    document = '# Welcome to GraphiQL\nquery($p: String) { hello(password: $p, otp: "123456") }'
    query = {"query": document, "variables": json.dumps({"p": "hunter2", "apiKey": "sk_live_1"})}
    response = client.get("/graphql/", query, HTTP_ACCEPT="application/json")
    assert response.json() == {"data": {"hello": "hi"}}
    referrer = f"http://testserver/graphql/?{response.request['QUERY_STRING']}"
    client.get("/page/", HTTP_REFERER=referrer, **NAVIGATE)
    track, page = sent()
    search = parse_qs(track["context"]["page"]["search"][1:])
    assert json.loads(search["variables"][0]) == {"p": "REDACTED", "apiKey": "REDACTED"}
    assert search["query"] == [document.replace('"123456"', '"REDACTED"')]
    assert page["properties"]["referrer"] == f"http://testserver/graphql/?{search_of(track)}"
    shown = json.dumps([track, page])
    assert "hunter2" not in shown and "sk_live_1" not in shown and "123456" not in shown


def search_of(message: dict[str, Any]) -> str:
    search: str = message["context"]["page"]["search"]
    return search[1:]
