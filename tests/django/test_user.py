"""The user on the events: Django's lazy ``request.user`` in every state a request can leave it.

A visitor who is not logged in is recognised without loading the lazy user (no
user model lookup). Without a session cookie the request is left untouched (no
``Vary: Cookie`` for the analytics' sake); with one, ``request.user`` is left as
loading it would leave it.
Everything else (a session with a user, a login in the view, another
middleware's user, a patched ``get_user``) reads the user as Django has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import auth
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.test import Client
from django.urls import include, path
from django.utils.functional import SimpleLazyObject, empty

import segment_core
from segment_django.apps import connect_receivers
from tests.django.conftest import Sent

pytestmark = pytest.mark.urls(__name__)

seen: list[HttpRequest] = []


def page(request: HttpRequest) -> HttpResponse:
    seen.append(request)
    return HttpResponse("ok")


def whoami(request: HttpRequest) -> HttpResponse:
    seen.append(request)
    return HttpResponse(request.user.get_username() or "anonymous")


def remember(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = ["A1"]
    return HttpResponse("ok")


def track_then_login(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Opened Sign-in")  # type: ignore[attr-defined]
    user = User.objects.get(username=request.GET["username"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse("ok")


def login_at_once(request: HttpRequest) -> HttpResponse:
    """A login whose first call is made by a receiver of the login itself."""
    user = User.objects.get(username=request.GET["username"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse("ok")


def session_login(request: HttpRequest) -> HttpResponse:
    """A hand-written login: the user's id written to the session, request.user untouched."""
    user = User.objects.get(username=request.GET["username"])
    request.session[auth.SESSION_KEY] = str(user.pk)
    request.session[auth.BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    request.session[auth.HASH_SESSION_KEY] = user.get_session_auth_hash()
    return HttpResponse("ok")


def logout(request: HttpRequest) -> HttpResponse:
    auth.logout(request)
    if "next" in request.GET:  # LogoutView's next_page, LOGOUT_REDIRECT_URL
        return HttpResponseRedirect(request.GET["next"])
    return HttpResponse("ok")


def custom_logout(request: HttpRequest) -> HttpResponse:
    """A logout of the app's own (a token's, as django-rest-knox's): it announces the
    logout with the signal, and leaves request.user and the session as they are."""
    user_logged_out.send(sender=User, request=request, user=request.user)
    request.analytics.track("Signed Out")  # type: ignore[attr-defined]
    return HttpResponse("<p>bye</p>")


def track_logout_track(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Signing Out")  # type: ignore[attr-defined]
    auth.logout(request)
    request.analytics.track("Signed Out")  # type: ignore[attr-defined]
    return HttpResponse("<p>bye</p>")


def delete_account(request: HttpRequest) -> HttpResponse:
    """Django's delete() leaves request.user logged in, its pk set to None."""
    if "track_first" in request.GET:
        request.analytics.track("Opened Settings")  # type: ignore[attr-defined]
    request.user.delete()
    request.analytics.track("Account Deleted")  # type: ignore[attr-defined]
    return HttpResponse("<p>bye</p>")


def acquire(request: HttpRequest) -> HttpResponse:
    """An impersonation tool's view (django-hijack's): the admin logged in as another user."""
    admin = request.user
    user = User.objects.get(username=request.GET["username"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session["hijack_history"] = [str(admin.pk)]
    return HttpResponse("ok")


hijack = ([path("acquire/", acquire, name="acquire")], "hijack")

urlpatterns = [
    path("", page, name="home"),
    path("hijack/", include(hijack)),
    path("delete-account/", delete_account, name="delete-account"),
    path("whoami/", whoami, name="whoami"),
    path("remember/", remember, name="remember"),
    path("track-then-login/", track_then_login, name="track-then-login"),
    path("session-login/", session_login, name="session-login"),
    path("login-at-once/", login_at_once, name="login-at-once"),
    path("logout/", logout, name="logout"),
    path("track-logout-track/", track_logout_track, name="track-logout-track"),
    path("custom-logout/", custom_logout, name="custom-logout"),
]


class TokenUserMiddleware:
    """A middleware of the app's own: a lazy user from an ``X-User`` header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.headers.get("X-User")
        if name:
            request.user = SimpleLazyObject(lambda: User.objects.get(username=name))
        return self.get_response(request)


@pytest.fixture(autouse=True)
def _forget_requests() -> None:
    seen.clear()


@pytest.fixture
def user_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the loads of Django's lazy user: each looks up the user model, then the session."""
    lookups: list[str] = []
    get_user_session_key = auth._get_user_session_key  # type: ignore[attr-defined]

    def counting(request: HttpRequest) -> Any:
        lookups.append(request.path)
        return get_user_session_key(request)

    monkeypatch.setattr(auth, "_get_user_session_key", counting)
    return lookups


def test_a_new_visitor_is_anonymous_without_touching_the_session(
    client: Client, sent: Sent, user_lookups: list[str]
) -> None:
    response = client.get("/")
    [message] = sent()
    assert "userId" not in message
    assert user_lookups == []
    # No session cookie: the request is left as the app left it. The session is not
    # accessed; the response varies on Cookie for the anonymous id cookie it sets.
    assert response["Vary"] == "Cookie" and "sessionid" not in response.cookies
    [request] = seen
    assert not request.session.accessed
    assert not hasattr(request, "_cached_user")
    assert request.user._wrapped is empty  # type: ignore[attr-defined]
    assert not request.user.is_authenticated  # loads it as usual


def test_a_view_that_reads_the_user_varies_on_the_cookie_as_usual(
    client: Client, sent: Sent
) -> None:
    response = client.get("/whoami/")
    assert response.content == b"anonymous"
    assert response["Vary"] == "Cookie"  # Django's own, for the view's read
    assert "userId" not in sent()[0]
    [request] = seen
    assert isinstance(request._cached_user, AnonymousUser)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_session_without_a_user_is_anonymous(
    client: Client, sent: Sent, user_lookups: list[str]
) -> None:
    client.get("/remember/")
    assert client.cookies["sessionid"].value
    response = client.get("/")
    assert [m.get("userId") for m in sent()] == [None, None]
    assert user_lookups == []
    assert response["Vary"] == "Cookie"
    assert seen[0].session["cart"] == ["A1"]


@pytest.mark.django_db
def test_an_unknown_session_cookie_is_anonymous(
    client: Client, sent: Sent, user_lookups: list[str]
) -> None:
    client.cookies["sessionid"] = "no-such-session-key-here"
    client.get("/")
    assert "userId" not in sent()[0]
    assert user_lookups == []


@pytest.mark.django_db
def test_a_session_of_a_logged_in_user(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann")
    client.force_login(user)
    client.get("/")
    assert sent()[0]["userId"] == str(user.pk)
    assert seen[0].user == user


@pytest.mark.django_db
def test_a_view_that_logs_in_after_a_call(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann")
    client.get("/track-then-login/?username=ann")
    track, identify, page = sent()
    assert (track["type"], identify["type"], page["type"]) == ("track", "identify", "page")
    assert "userId" not in track
    assert identify["userId"] == page["userId"] == str(user.pk)
    assert identify["anonymousId"] == track["anonymousId"]


@pytest.mark.django_db
def test_a_new_visitor_s_calls_during_a_login_keep_its_anonymous_id(
    client: Client, sent: Sent
) -> None:
    """Django's update_last_login runs before the login's identify: the post_save a
    tracking receiver sees carries the visitor's anonymous id, as every call after
    the identify does, and the identify's traits see last_login set."""

    def saved(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
        segment_core.analytics().track("User Saved")

    user = User.objects.create_user("ann")
    post_save.connect(saved, sender=User, dispatch_uid="test.saved")
    try:
        client.get("/login-at-once/?username=ann")
    finally:
        post_save.disconnect(dispatch_uid="test.saved", sender=User)
    saved_track, identify, page = sent()
    assert (saved_track.get("event"), identify["type"], page["type"]) == (
        "User Saved",
        "identify",
        "page",
    )
    assert saved_track["userId"] == page["userId"] == str(user.pk)
    assert saved_track["anonymousId"] == identify["anonymousId"] == page["anonymousId"]


@pytest.mark.django_db
def test_a_login_with_no_identify_leaves_a_new_visitor_s_calls_to_the_user_alone(
    client: Client, sent: Sent, segment: Any
) -> None:
    """No identify joins the visitor's id to the user: as for an API client, the
    calls carry the user alone and no cookie keeps an id nothing uses."""
    segment(IDENTIFY_ON_LOGIN=False)

    def saved(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
        segment_core.analytics().track("User Saved")

    user = User.objects.create_user("ann")
    post_save.connect(saved, sender=User, dispatch_uid="test.saved")
    try:
        response = client.get("/login-at-once/?username=ann")
    finally:
        post_save.disconnect(dispatch_uid="test.saved", sender=User)
    [saved_track] = sent(type="track")
    assert saved_track["userId"] == str(user.pk)
    assert "anonymousId" not in saved_track
    assert "ajs_anonymous_id" not in response.cookies


def store_external_id(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    request.session["external_id"] = f"ext-{user.pk}"


@pytest.mark.django_db
def test_the_app_s_own_login_receivers_run_before_the_identify(
    client: Client, sent: Sent, segment: Any
) -> None:
    """What they store (an external id the USER_ID hook reads, last_login) is there
    for the identify's hooks."""
    segment(
        USER_ID="tests.django.hooks.external_id",
        IDENTIFY_TRAITS="tests.django.hooks.last_login_traits",
    )
    # An app listed before segment_django in INSTALLED_APPS: its receiver first.
    user_logged_in.disconnect(dispatch_uid="segment_django.login")
    user_logged_in.connect(store_external_id, dispatch_uid="test.external_id")
    connect_receivers()
    try:
        user = User.objects.create_user("ann")
        client.get("/login-at-once/?username=ann")
    finally:
        user_logged_in.disconnect(dispatch_uid="test.external_id")
    identify, page = sent()
    assert identify["userId"] == page["userId"] == f"ext-{user.pk}"
    assert identify["traits"]["last_login"] is not None


@pytest.mark.django_db
def test_the_login_identify_uses_the_user_id_hook_as_every_call_does(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(USER_ID="tests.django.hooks.user_email")
    User.objects.create_user("ann", email="ann@example.com")
    client.get("/track-then-login/?username=ann")
    track, identify, page = sent()
    assert identify["type"] == "identify"
    assert identify["userId"] == page["userId"] == "ann@example.com"
    assert identify["anonymousId"] == track["anonymousId"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "hooks",
    [
        {"IDENTIFY_ON_LOGIN": "tests.django.hooks.identify_unless_impersonating"},
        {"USER_ID": "tests.django.hooks.user_unless_impersonating"},
    ],
)
def test_an_impersonation_tools_login_sends_no_identify(
    client: Client, sent: Sent, segment: Any, hooks: dict[str, str]
) -> None:
    segment(**hooks)
    admin = User.objects.create_user("admin")
    User.objects.create_user("bob")
    client.get("/track-then-login/?username=admin")
    client.get("/hijack/acquire/?username=bob")
    identifies = [m for m in sent() if m["type"] == "identify"]
    assert [m["userId"] for m in identifies] == [str(admin.pk)]


@pytest.mark.django_db
def test_a_view_that_writes_the_user_to_the_session(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann")
    client.get("/session-login/?username=ann")
    assert sent()[0]["userId"] == str(user.pk)


@pytest.mark.django_db
def test_a_view_that_logs_out(client: Client, sent: Sent) -> None:
    client.force_login(User.objects.create_user("ann"))
    client.get("/logout/")
    assert "userId" not in sent()[0]


@pytest.mark.django_db
def test_a_logout_expires_the_user_cookie_analytics_js_keeps(client: Client) -> None:
    # Answered with a redirect, its page runs no analytics.reset(): the page it leads
    # to must name no user in the browser either.
    client.force_login(User.objects.create_user("ann"))
    client.cookies["ajs_user_id"] = "u-ann"
    response = client.get("/logout/?next=/")
    assert response.status_code == 302
    expired = response.cookies["ajs_user_id"]
    assert (expired.value, expired["max-age"], expired["path"]) == ("", 0, "/")
    assert "private" in response["Cache-Control"]
    # No cookie to expire, or no logout: none is written.
    client.cookies.pop("ajs_user_id")
    client.force_login(User.objects.get(username="ann"))
    assert "ajs_user_id" not in client.get("/logout/?next=/").cookies
    client.cookies["ajs_user_id"] = "u-ann"
    assert "ajs_user_id" not in client.get("/").cookies


@pytest.mark.django_db
def test_a_logout_after_a_call_ends_the_user_for_the_rest_of_the_request(
    client: Client, sent: Sent
) -> None:
    user = User.objects.create_user("ann")
    client.force_login(user)
    client.get("/track-logout-track/")
    signing_out, signed_out, page = sent()
    assert signing_out["userId"] == str(user.pk)
    assert "userId" not in signed_out and "userId" not in page
    assert signed_out["anonymousId"] == page["anonymousId"]


@pytest.mark.django_db
def test_a_logout_receiver_connected_after_the_app_s_tracks_for_the_user_logging_out(
    client: Client, sent: Sent
) -> None:
    # Django sends user_logged_out while the user is logged in: a receiver's calls
    # are the user's whatever the order receivers were connected in (one connected
    # by a module the URLconf imports comes after the app's ready()).
    def receiver(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
        request.analytics.track("Logging Out", {"who": user.pk})  # type: ignore[attr-defined]
        snapshots.append(request.analytics.snapshot())  # type: ignore[attr-defined]

    snapshots: list[dict[str, Any]] = []

    user = User.objects.create_user("ann")
    client.force_login(user)
    user_logged_out.connect(receiver)
    try:
        client.get("/track-logout-track/")
        client.force_login(user)
        client.get("/logout/")  # the receiver's call the request's first
    finally:
        user_logged_out.disconnect(receiver)
    events = [(m.get("event"), m.get("userId")) for m in sent()]
    assert events == [
        ("Signing Out", str(user.pk)),
        ("Logging Out", str(user.pk)),
        ("Signed Out", None),
        (None, None),  # the page call
        ("Logging Out", str(user.pk)),
        (None, None),
    ]
    assert [snapshot["userId"] for snapshot in snapshots] == [str(user.pk)] * 2  # a job's


@pytest.mark.django_db
def test_a_logout_the_app_announces_itself_ends_the_user_for_the_calls_after_it(
    client: Client, sent: Sent
) -> None:
    client.force_login(User.objects.create_user("ann"))
    client.get("/custom-logout/")
    assert [m.get("userId") for m in sent()] == [None, None]


@pytest.mark.django_db
def test_a_lazy_user_of_another_middleware(client: Client, sent: Sent, settings: Any) -> None:
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:-1],
        f"{__name__}.TokenUserMiddleware",
        settings.MIDDLEWARE[-1],
    ]
    user = User.objects.create_user("ann")
    client.get("/", HTTP_X_USER="ann")
    client.get("/")
    assert [m.get("userId") for m in sent()] == [str(user.pk), None]


@pytest.mark.django_db
def test_remote_user_middleware(client: Client, sent: Sent, settings: Any) -> None:
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:-1],
        "django.contrib.auth.middleware.RemoteUserMiddleware",
        settings.MIDDLEWARE[-1],
    ]
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]
    client.get("/", REMOTE_USER="ann")
    client.get("/")
    user = User.objects.get(username="ann")
    assert [m.get("userId") for m in sent()] == [str(user.pk), None]


def test_a_replaced_get_user_is_called(
    client: Client, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/")  # the middleware has seen Django's own get_user

    class Staff(AnonymousUser):
        pk = 7

        @property
        def is_authenticated(self) -> bool:  # type: ignore[override]
            return True

    monkeypatch.setattr(auth, "get_user", lambda request: Staff())
    client.get("/")
    monkeypatch.undo()
    client.get("/")
    assert [m.get("userId") for m in sent()] == [None, "7", None]


class TrackingBackend(ModelBackend):
    """A backend whose get_user sends a "last seen" event."""

    loads = 0

    def get_user(self, user_id: Any) -> Any:
        TrackingBackend.loads += 1
        segment_core.analytics().track("Session Resumed")
        return super().get_user(user_id)


@pytest.mark.django_db
@pytest.mark.parametrize("view_reads_the_user", [True, False])
def test_a_backend_that_tracks_as_it_loads_the_user_runs_once(
    client: Client, sent: Sent, settings: Any, view_reads_the_user: bool
) -> None:
    settings.AUTHENTICATION_BACKENDS = [f"{__name__}.TrackingBackend"]
    user = User.objects.create_user("ann")
    client.force_login(user, backend=settings.AUTHENTICATION_BACKENDS[0])
    TrackingBackend.loads = 0
    client.get("/whoami/" if view_reads_the_user else "/")
    assert TrackingBackend.loads == 1
    assert [(m["type"], m.get("event"), m.get("userId")) for m in sent()] == [
        ("track", "Session Resumed", None),
        ("page", None, str(user.pk)),
    ]


@pytest.mark.django_db
def test_a_deleted_account_keeps_its_user_id_for_the_rest_of_the_request(
    client: Client, sent: Sent
) -> None:
    user = User.objects.create_user("ann")
    user_id = str(user.pk)
    client.force_login(user)
    client.get("/delete-account/")
    assert not User.objects.filter(username="ann").exists()
    assert [(m["type"], m.get("userId")) for m in sent()] == [
        ("track", user_id),
        ("page", user_id),
    ]


@pytest.mark.django_db
def test_a_deleted_user_of_another_middleware_keeps_the_user_id_known_so_far(
    client: Client, sent: Sent, settings: Any
) -> None:
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:-1],
        f"{__name__}.TokenUserMiddleware",
        settings.MIDDLEWARE[-1],
    ]
    user_id = str(User.objects.create_user("ann").pk)
    client.get("/delete-account/?track_first=1", HTTP_X_USER="ann")
    assert [(m.get("event"), m.get("userId")) for m in sent()] == [
        ("Opened Settings", user_id),
        ("Account Deleted", user_id),
        (None, user_id),
    ]
