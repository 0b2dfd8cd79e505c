from __future__ import annotations

from django.urls import path

from tests.e2e.apps.django_site import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("item/<int:n>", views.item, name="item"),
]
