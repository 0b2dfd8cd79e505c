"""User hooks referenced by dotted path from settings.SEGMENT in the tests."""

from __future__ import annotations

from django.http import HttpRequest


def user_email(request: HttpRequest) -> str | None:
    user = request.user
    return user.email if user.is_authenticated else None


def broken(*args: object) -> bool:
    raise RuntimeError("bug in a user hook")


def only_home(request: HttpRequest, response: object) -> bool:
    return request.path == "/"
