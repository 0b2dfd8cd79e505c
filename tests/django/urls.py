from __future__ import annotations

from django.urls import include, path, re_path

from tests.django import views

shop = (
    [path("cart/", views.page, name="cart")],
    "shop",
)

urlpatterns = [
    path("", views.page, name="home"),
    path("products/<int:pk>/", views.page, name="product-detail"),
    path("unnamed/<slug:slug>/", views.page),
    re_path(r"^legacy/(?P<year>[0-9]{4})/$", views.page, name="legacy"),
    path("shop/", include(shop)),
    path("shared/", views.shared, name="shared"),
    path("redirect/", views.redirect, name="redirect"),
    path("to-https/", views.to_https, name="to_https"),
    path("missing/", views.missing, name="missing"),
    path("boom/", views.boom, name="boom"),
    path("track/", views.track, name="track"),
    path("atrack/", views.atrack, name="atrack"),
    path("checkout/", views.checkout, name="checkout"),
    path("identify/", views.identify, name="identify"),
    path("whoami/", views.whoami, name="whoami"),
    path("awhoami/", views.awhoami, name="awhoami"),
    path("asignout/", views.asignout, name="asignout"),
    path("asignout-alogout/", views.asignout_alogout, name="asignout-alogout"),
    path("adelete-account/", views.adelete_account, name="adelete-account"),
    path("own-cookie/", views.own_cookie, name="own-cookie"),
    path("stream/", views.stream, name="stream"),
    path("astream/", views.astream, name="astream"),
    path("stream-tracked/", views.stream_tracked, name="stream-tracked"),
    path("stream-left/", views.stream_left, name="stream-left"),
    path("astream-tracked/", views.astream_tracked, name="astream-tracked"),
    path("astream-failing/", views.astream_failing, name="astream-failing"),
    path("stream-failing/", views.stream_failing, name="stream-failing"),
    path("healthz", views.page, name="healthz"),
    path("assets/app.css", views.page, name="asset"),
    path("app/", include("tests.django.realapp")),
]
