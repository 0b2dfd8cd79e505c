"""A URLconf whose default language has no prefix (``prefix_default_language=False``)."""

from __future__ import annotations

from django.conf.urls.i18n import i18n_patterns
from django.urls import path

from tests.django import views

urlpatterns = [
    path("fr/faq/", views.page, name="faq"),  # a route of its own, not a language's
    *i18n_patterns(
        path("shop/", views.page, name="shop"),
        path("invite/<str:invite_token>/", views.page, name="invite"),
        prefix_default_language=False,
    ),
]
