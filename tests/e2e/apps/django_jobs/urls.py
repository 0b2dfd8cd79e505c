from __future__ import annotations

from django.urls import path

from tests.e2e.apps.django_jobs import views
from tests.e2e.apps.django_site import views as site_views

urlpatterns = [
    path("health", views.health, name="health"),
    path("item/<int:n>", site_views.item, name="item"),
    path("order/<str:order_id>", views.order, name="order"),
    path("threads", views.threads, name="threads"),
]
