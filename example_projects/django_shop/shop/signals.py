"""Identify users as they log in, whichever view logs them in."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest


@receiver(user_logged_in)
def identify_user(sender: type, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    analytics = getattr(request, "analytics", None)
    if analytics is None:  # a login outside a request (a test, a shell)
        return
    # The call carries the visitor's anonymous id too: Segment joins the visits
    # made before logging in to this user. Later calls in this request use the id.
    analytics.identify(
        user.pk,
        {
            "username": user.get_username(),
            "email": user.email,
            "firstName": user.first_name,
            "createdAt": user.date_joined,
        },
    )
