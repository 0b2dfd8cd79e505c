"""Settings are read on access: changes rebuild the client and the options."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import set_script_prefix

import segment_core
import segment_django
from segment_core.scope import analytics
from segment_django.middleware import SegmentMiddleware
from segment_django.testing import outbox
from tests.django.conftest import Sent


def test_one_client_per_process_rebuilt_when_settings_change(settings: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k1", "SEND": False}
    first = segment_django.get_client()
    assert segment_django.get_client() is first
    assert first.config.write_key == "k1"
    settings.SEGMENT = {"WRITE_KEY": "k2", "SEND": False, "FLUSH_AT": 5, "PAGE_CALLS": False}
    second = segment_django.get_client()
    assert second is not first
    assert (second.config.write_key, second.config.flush_at) == ("k2", 5)
    assert segment_django.web_options().page_calls is False


def test_override_settings_works(settings: Any) -> None:
    with override_settings(SEGMENT={"WRITE_KEY": "inner", "SEND": False}):
        assert segment_django.get_client().config.write_key == "inner"
    assert segment_django.get_client().config.write_key == "test-key"


def test_static_and_media_urls_are_excluded(settings: Any) -> None:
    settings.STATIC_URL = "/s/"
    settings.MEDIA_URL = "https://cdn.example/media/"
    patterns = [p.pattern for p in segment_django.web_options().exclude_patterns]
    assert patterns[-1] == "^/s/"
    assert not any("cdn" in p for p in patterns)


def test_an_unset_media_url_under_a_script_prefix_excludes_no_page(
    settings: Any, sent: Sent
) -> None:
    # django.setup() sets FORCE_SCRIPT_NAME as the script prefix (runserver, manage.py
    # test, pytest-django): Django then reads an unset MEDIA_URL as "/app/", and a
    # relative STATIC_URL as "/app/static/".
    settings.FORCE_SCRIPT_NAME = "/app"
    set_script_prefix("/app/")
    try:
        settings.STATIC_URL = "static/"
        settings.MEDIA_URL = ""
        patterns = [p.pattern for p in segment_django.web_options().exclude_patterns]
        assert "^/app/static/" in patterns
        assert "^/app/" not in patterns
        response = Client().get("/track/")
        assert response.status_code == 200 and "ajs_anonymous_id" in response.cookies
        assert [(m["type"], m["context"]["page"]["path"]) for m in sent()] == [
            ("track", "/app/track/"),
            ("page", "/app/track/"),
        ]
    finally:
        set_script_prefix("/")


def test_the_django_client_becomes_the_default_client(
    sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_core, "default_client", None)
    client = segment_django.get_client()
    assert segment_core.default_client is client
    # Outside a request (a task, a command), analytics() uses the settings' client.
    assert analytics().client is client
    analytics().track("Nightly Export", user_id="u-1")
    assert [m["event"] for m in sent()] == ["Nightly Export"]


def test_after_a_settings_change_the_module_api_still_uses_djangos_client(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "a-real-key")  # what a stray client would use
    monkeypatch.setenv("SEGMENT_HOST", "http://127.0.0.1:9")  # and where, if this fails
    monkeypatch.setattr(segment_core, "default_client", segment_django.get_client())
    settings.SEGMENT = {"WRITE_KEY": "k", "HOST": "http://127.0.0.1:9"}
    segment_core.track("user-1", "After The Change")  # no request made the client again
    assert segment_core.default_client is segment_django.get_client()
    outbox.assert_tracked("After The Change")  # diverted: a test sends nothing


@pytest.mark.parametrize(
    ("segment", "text"),
    [
        ({"PAGE_CALL": True}, "unknown option 'PAGE_CALL'; did you mean 'PAGE_CALLS'?"),
        ({"FLUSH_AT": -1}, "FLUSH_AT must be between 1 and 2500"),
        ({"EXCLUDE_PATHS": "("}, "EXCLUDE_PATHS: '(' is not a valid regular expression"),
        ({"COOKIE_MAX_AGE": 0.5}, "COOKIE_MAX_AGE must be a positive number of seconds"),
        ("not a dict", "settings.SEGMENT must be a dict"),
    ],
)
def test_invalid_settings_fail_when_the_middleware_loads(
    settings: Any, segment: Any, text: str
) -> None:
    settings.SEGMENT = segment
    with pytest.raises(ImproperlyConfigured, match=text.replace("?", r"\?").replace("(", r"\(")):
        SegmentMiddleware(lambda request: None)
    with pytest.raises(ImproperlyConfigured):
        Client().get("/")


@pytest.mark.parametrize(
    ("variable", "value", "text"),
    [
        ("SEGMENT_HOST", "garbage", "host must be an http:// or https:// URL, got 'garbage'"),
        ("SEGMENT_WRITE_KEY", "abc:def", "write_key must not contain ':'"),
    ],
)
def test_a_bad_environment_variable_is_named_not_blamed_on_the_settings(
    settings: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, text: str
) -> None:
    monkeypatch.setenv(variable, value)
    settings.SEGMENT = {}  # neither HOST nor WRITE_KEY: both come from the environment
    with pytest.raises(ImproperlyConfigured) as raised:
        SegmentMiddleware(lambda request: None)
    message = str(raised.value)
    assert message.startswith(text) and message.endswith(
        f"(from the environment variable {variable})"
    )
    assert "settings.SEGMENT" not in message
