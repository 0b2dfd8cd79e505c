"""django-csp's nonce in the snippet of a page streamed with ``StreamingHttpResponse``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from csp.constants import NONCE, SELF
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.test import Client
from django.urls import path

from tests.web.snippets import has_snippet, script_tags

KEY = "website-key"
PAGE = "{% load segment %}<html><head>{% segment_snippet %}</head><body>hi</body></html>"


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html")


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    # The template renders as the server pulls the body, after the headers are out.
    def body() -> Iterator[str]:
        yield "<!doctype html>"
        yield render_to_string("page.html", request=request)

    return StreamingHttpResponse(body(), content_type="text/html; charset=utf-8")


urlpatterns = [path("", page, name="home"), path("streamed/", streamed, name="streamed")]


@pytest.fixture(autouse=True)
def _nonce_only_policy(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = ["csp.middleware.CSPMiddleware", *settings.MIDDLEWARE]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {"default-src": [SELF], "script-src": [NONCE]}
    }
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "context_processors": ["django.template.context_processors.request"],
                "loaders": [("django.template.loaders.locmem.Loader", {"page.html": PAGE})],
            },
        }
    ]


def nonce_of_the_header(response: Any) -> str:
    [nonce] = re.findall(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    return str(nonce)


@pytest.mark.parametrize("url", ["/", "/streamed/"])
def test_the_snippet_and_the_header_share_django_csps_nonce(segment: Any, url: str) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    response = Client().get(url, HTTP_ACCEPT="text/html")
    nonce = nonce_of_the_header(response)
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    html = body.decode()
    assert has_snippet(html)
    assert script_tags(html) == [f'<script nonce="{nonce}">\n']


def test_a_streamed_page_without_a_snippet_to_come_makes_no_nonce(segment: Any) -> None:
    segment(SEND=False)  # no browser key: the snippet renders nothing
    response = Client().get("/streamed/", HTTP_ACCEPT="text/html")
    b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert "nonce-" not in response["Content-Security-Policy"]
