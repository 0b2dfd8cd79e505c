"""User hooks referenced by dotted path from settings.SEGMENT in the tests."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def user_email(request: HttpRequest) -> str | None:
    user = request.user
    return user.email if user.is_authenticated else None


def add_origin(message: dict[str, Any]) -> dict[str, Any]:
    """A client hook (before_send) named in the settings by its dotted path."""
    message.setdefault("properties", {})["origin"] = "settings"
    return message


def broken(*args: object) -> bool:
    raise RuntimeError("bug in a user hook")


def only_home(request: HttpRequest, response: object) -> bool:
    return request.path == "/"


def user_from_the_database(request: HttpRequest) -> str | None:
    """A hook that queries the database, as real ones do."""
    from django.contrib.auth.models import User

    if not request.user.is_authenticated:
        return None
    return "db-" + User.objects.get(pk=request.user.pk).username


def users_counted(request: HttpRequest, response: object) -> dict[str, int]:
    from django.contrib.auth.models import User

    return {"users": User.objects.count()}


async def async_user_id(request: Any) -> str | None:
    return "never awaited"


async def async_page_filter(request: Any, response: Any) -> bool:
    return False


async def async_identify_on_login(request: Any, user: Any) -> bool:
    return False


def name_of_the_route(request: HttpRequest) -> str:
    """A page name from ``request.resolver_match``, as Django code reads the route."""
    assert request.resolver_match is not None
    return "Shop: " + request.resolver_match.url_name


def view_of_the_route(request: HttpRequest, response: object) -> dict[str, str]:
    assert request.resolver_match is not None
    return {"view": request.resolver_match.view_name}


def outside_the_backoffice(request: HttpRequest, response: object) -> bool:
    assert request.resolver_match is not None
    return request.resolver_match.app_name != "backoffice"


def _impersonating(request: HttpRequest) -> bool:
    """A route of the impersonation tool (django-hijack's are namespaced ``hijack``)."""
    match = request.resolver_match
    return match is not None and match.namespace == "hijack"


def identify_unless_impersonating(request: HttpRequest, user: object) -> bool:
    return not _impersonating(request)


def user_unless_impersonating(request: HttpRequest) -> str | None:
    if _impersonating(request) or not request.user.is_authenticated:
        return None
    return str(request.user.pk)


def consent_of_two(request: Any, response: Any) -> bool:
    """A consent hook written as a page_filter: it is called with the request alone."""
    return True


def user_id_of_nothing() -> str:
    return "u1"


def external_id(request: HttpRequest) -> str | None:
    """The id an app's own login receiver stored in the session."""
    value = request.session.get("external_id")
    return str(value) if value else None


def last_login_traits(user: Any) -> dict[str, Any]:
    return {"last_login": user.last_login.isoformat() if user.last_login else None}
