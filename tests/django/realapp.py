"""Views of a real app for the tests: admin, Django REST framework, auth views, tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

HTML = "<!doctype html><title>t</title><p>ok</p>"


def html(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse(HTML)


def xhtml(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HTML, content_type="Application/XHTML+XML; charset=utf-8")


def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def report(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"%PDF-1.4 report", content_type="application/pdf")


def not_modified(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=304)


def tracked_html(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    request.analytics.track("Viewed", {"n": 1})  # type: ignore[attr-defined]
    return HttpResponse(HTML)


def sign_in(request: HttpRequest) -> HttpResponse:
    user = get_user_model().objects.get(username=request.GET["username"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.analytics.track("Signed In")  # type: ignore[attr-defined]
    return HttpResponse(HTML)


class Orders(APIView):
    """A JSON API: token or session authentication, as in a real DRF project."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        request.analytics.track("Listed Orders")  # type: ignore[attr-defined]
        return Response({"orders": []})


class Quiet(APIView):
    """A JSON API view that makes no call of its own."""

    authentication_classes = [SessionAuthentication]

    def get(self, request: Request) -> Response:
        return Response({"quiet": True})


class Dashboard(APIView):
    """A DRF view answering HTML: its page call carries the user DRF authenticated."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]

    def get(self, request: Request) -> HttpResponse:
        request.analytics.track("Opened Dashboard")  # type: ignore[attr-defined]
        return HttpResponse(HTML)


class Rename(APIView):
    """A JSON API that merges the user's id into the one of another system."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        request.analytics.alias(f"crm-{request.user.pk}")  # type: ignore[attr-defined]
        return Response({"ok": True})


backoffice = AdminSite(name="backoffice")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("backoffice/", backoffice.urls),
    path("html/", html, name="html"),
    path("xhtml/", xhtml, name="xhtml"),
    path("json/", json_view, name="json"),
    path("not-modified/", not_modified, name="not-modified"),
    path("reports/q3.pdf", report, name="report"),
    path("sign-in/", sign_in, name="sign-in"),
    path("api/orders/", Orders.as_view(), name="orders"),
    path("api/dashboard/", Dashboard.as_view(), name="dashboard"),
    path("api/quiet/", Quiet.as_view(), name="quiet"),
    path("api/rename/", Rename.as_view(), name="rename"),
    path("api-auth/", include("rest_framework.urls")),
    path("invite/<str:invite_key>/", tracked_html, name="invite"),
    path("files/<path:access_token>", tracked_html, name="file"),
    re_path(r"^raw/(?P<rest>.*)$", html, name="raw"),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(template_name="reset.html"),
        name="password_reset_confirm",
    ),
]
