"""The Cache-Control of a response that sets the visitor's cookie: no shared cache keeps it."""

from __future__ import annotations

import pytest

from segment_core.web import cache_control_for_cookie


@pytest.mark.parametrize(
    ("app_value", "expected"),
    [
        (None, "private"),
        ("", "private"),
        ("max-age=60", "private, max-age=60"),
        ("public, max-age=60, s-maxage=600", "private, max-age=60, s-maxage=600"),
        ("max-age=60, PUBLIC", "private, max-age=60"),
        ("no-cache", "private, no-cache"),
        # Django's per-site cache before 5.2 stores a no-store response.
        ("no-store", "private, no-store"),
        ("max-age=60,, public", "private, max-age=60"),
        # A comma inside a quoted value ends no directive.
        ('public, no-cache="Set-Cookie, Vary"', 'private, no-cache="Set-Cookie, Vary"'),
        ('no-cache="a\\"b, public"', 'private, no-cache="a\\"b, public"'),
        # Django's cache looks for "private" as written: another case does not stop it.
        ("Private, max-age=0", "private, max-age=0"),
        # private="Field" keeps that field alone out of shared caches, not the cookie.
        ('private="Set-Cookie", max-age=60', "private, max-age=60"),
        ('private="X-Account-Id", max-age=60', "private, max-age=60"),
    ],
)
def test_private_is_merged_into_the_app_s_value(app_value: str | None, expected: str) -> None:
    assert cache_control_for_cookie(app_value) == expected


@pytest.mark.parametrize(
    "app_value",
    [
        "private",
        "private, max-age=0",
        "max-age=0, no-cache, no-store, must-revalidate, private",
    ],
)
def test_a_value_that_says_private_is_left_alone(app_value: str) -> None:
    assert cache_control_for_cookie(app_value) == app_value
