"""A URLconf shaped like the apps Django sites add: a CMS (Wagtail), an API
framework (django-ninja) and htmx helpers (django-htmx), each reduced to what
reaches the middleware.

- ``/cms/preview/``: an editor's preview, made as Wagtail's ``make_preview_request()``
  makes it: a new request marked ``is_dummy``, run through the whole middleware
  chain by a handler of its own, for the page at ``/events/``.
- ``/events/...``: Wagtail's catch-all page route; below the page, the page's own
  routes (``RoutablePageMixin``), whose match Wagtail keeps in
  ``request.routable_resolver_match``.
- ``/api/...``: a NinjaAPI: the user its auth class authenticates goes to
  ``request.auth`` (``request.user`` stays anonymous), its docs and schema are routes
  ``openapi-view`` and ``openapi-json`` in the app ``ninja``, in the API's namespace.
- ``/htmx/...``: django-htmx's answers: an empty 200 with ``HX-Redirect``,
  ``HX-Refresh: true`` or ``HX-Location``.
"""

from __future__ import annotations

import io
from typing import Any

from django.contrib.auth import get_user_model
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIRequest
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.urls import URLResolver, path, re_path
from django.urls.resolvers import RegexPattern

HTML = "<!doctype html><title>t</title><p>ok</p>"

# -- the CMS ----------------------------------------------------------------------


def invite(request: HttpRequest, invite_token: str) -> HttpResponse:
    request.analytics.track("Invite Opened")  # type: ignore[attr-defined]
    return HttpResponse(HTML)


def confirm(request: HttpRequest, confirm_token: Any) -> HttpResponse:
    return HttpResponse(HTML)


def event_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HTML)


#: The page's own routes, below its URL, matched by a resolver of the page's.
_page_routes = URLResolver(
    RegexPattern(r"^/"),
    [
        path("", event_index, name="index"),
        path("invite/<str:invite_token>/", invite, name="invite"),
        path("confirm/<uuid:confirm_token>/", confirm, name="confirm"),
    ],
)


def serve(request: HttpRequest, url_path: str) -> HttpResponse:
    """Wagtail's ``serve`` view, for one routable page at ``/events/``."""
    page, _, below = url_path.partition("/")
    if page != "events":
        raise Http404
    match = _page_routes.resolve("/" + below)
    request.routable_resolver_match = match  # type: ignore[attr-defined]
    response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    return response


def preview(request: HttpRequest) -> HttpResponseBase:
    """An editor previews the page at ``/events/``."""
    meta = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/events/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    for name in ("REMOTE_ADDR", "HTTP_COOKIE", "HTTP_USER_AGENT", "HTTP_ACCEPT"):
        if name in request.META:
            meta[name] = request.META[name]
    dummy = WSGIRequest(meta)
    dummy.is_dummy = True  # type: ignore[attr-defined]

    class PreviewHandler(BaseHandler):
        def _get_response(self, request: HttpRequest) -> HttpResponse:
            request.analytics.track("Draft Rendered")  # type: ignore[attr-defined]
            return HttpResponse(HTML)

    handler = PreviewHandler()
    handler.load_middleware()
    return handler.get_response(dummy)


# -- the API ----------------------------------------------------------------------


def me(request: HttpRequest) -> JsonResponse:
    """An operation with a bearer auth class: its user goes to ``request.auth``."""
    if request.headers.get("Authorization") != "Bearer good":
        return JsonResponse({"detail": "Unauthorized"}, status=401)
    request.auth = get_user_model().objects.get(username="ada")  # type: ignore[attr-defined]
    request.analytics.track("Read Profile")  # type: ignore[attr-defined]
    return JsonResponse({"user": request.auth.pk})  # type: ignore[attr-defined]


async def ame(request: HttpRequest) -> JsonResponse:
    """:func:`me` as an async operation."""
    if request.headers.get("Authorization") != "Bearer good":
        return JsonResponse({"detail": "Unauthorized"}, status=401)
    user = await get_user_model().objects.aget(username="ada")
    request.auth = user  # type: ignore[attr-defined]
    request.analytics.track("Read Profile")  # type: ignore[attr-defined]
    return JsonResponse({"user": user.pk})


def keyed(request: HttpRequest) -> JsonResponse:
    """An operation whose API key auth answers the key's own object, not a user."""
    request.auth = "key-1"  # type: ignore[attr-defined]
    request.analytics.track("Used Key")  # type: ignore[attr-defined]
    return JsonResponse({"ok": True})


def docs(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><title>Swagger UI</title>")


def schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"openapi": "3.1.0"})


def api_urls(namespace: str) -> tuple[list[Any], str, str]:
    """What ``NinjaAPI(urls_namespace=namespace).urls`` hands ``path()``."""
    return (
        [
            path("me", me, name="me"),
            path("ame", ame, name="ame"),
            path("keyed", keyed, name="keyed"),
            path("openapi.json", schema, name="openapi-json"),
            path("docs", docs, name="openapi-view"),
        ],
        "ninja",
        namespace,
    )


# -- htmx -------------------------------------------------------------------------


def client_redirect(request: HttpRequest) -> HttpResponse:
    response = HttpResponse()
    response["HX-Redirect"] = "/events/"
    return response


def client_refresh(request: HttpRequest) -> HttpResponse:
    response = HttpResponse()
    response["HX-Refresh"] = request.GET.get("refresh", "true")
    return response


def location(request: HttpRequest) -> HttpResponse:
    response = HttpResponse()
    response["HX-Location"] = '{"path": "/events/"}'
    return response


urlpatterns = [
    path("cms/preview/", preview, name="preview"),
    path("api/", api_urls("api-1.0.0")),
    path("api/v2/", api_urls("api-2")),
    path("htmx/redirect/", client_redirect, name="client-redirect"),
    path("htmx/refresh/", client_refresh, name="client-refresh"),
    path("htmx/location/", location, name="location"),
    path("htmx/page/", event_index, name="htmx-page"),
    re_path(r"^((?:[\w\-]+/)*)$", serve, name="page_serve"),
]
