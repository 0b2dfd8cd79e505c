"""Segment hooks of the shop, named in ``settings.SEGMENT``."""

from __future__ import annotations

from typing import Any


def identify_traits(user: Any) -> dict[str, Any]:
    """The traits of the identify segment_django sends when ``user`` logs in.

    The identify carries the visitor's anonymous id too: Segment joins the visits
    made before logging in to this user.
    """
    return {
        "username": user.get_username(),
        "email": user.email,
        "firstName": user.first_name,
        "createdAt": user.date_joined,
    }
