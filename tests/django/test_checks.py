"""Every system check, by id: each test asserts the exact list of ids reported."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core.checks import run_checks

import segment_core
from segment_django.middleware import SegmentMiddleware

SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
OURS = "segment_django.middleware.SegmentMiddleware"
UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_FROM_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"
CACHE = "django.middleware.cache.CacheMiddleware"
#: A key file with the wrong content (a secret mounted from the wrong source).
PEM_WITHOUT_A_KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n"


class OurSubclass(SegmentMiddleware):
    pass


class ProjectAuthentication(AuthenticationMiddleware):
    pass


def ids(settings: Any, **segment: Any) -> list[str]:
    settings.SEGMENT = segment
    return [m.id for m in run_checks() if m.id and m.id.startswith("segment_django.")]


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No write key but the settings': none in the environment, none at module level."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    monkeypatch.setattr(segment_core, "default_client", None)
    monkeypatch.setattr(segment_core, "write_key", None)


def test_a_good_configuration_reports_nothing(settings: Any) -> None:
    assert ids(settings, WRITE_KEY="k", EXCLUDE_PATHS=[r"^/admin/"], TRUSTED_PROXIES=1) == []


def test_the_client_and_web_options_share_their_rules(settings: Any) -> None:
    # Yes/no options take 0, 1 and None (the default); hooks take a dotted path.
    assert (
        ids(
            settings,
            WRITE_KEY="k",
            SEND=0,
            PAGE_CALLS=0,
            SET_COOKIE=None,
            TRUSTED_PROXIES=None,
            BEFORE_SEND="tests.django.hooks.add_origin",
            ON_ERROR="tests.django.hooks:broken",
            USER_ID="tests.django.hooks.user_email",
        )
        == []
    )


def test_e001_not_a_dict(settings: Any) -> None:
    settings.SEGMENT = ["WRITE_KEY", "k"]
    [message] = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert message.id == "segment_django.E001"


def test_e002_unknown_key_with_the_closest_name(settings: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", "PAGE_CALL": False, "FLUSH_ATT": 1}
    messages = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert [m.id for m in messages] == ["segment_django.E002", "segment_django.E002"]
    assert messages[0].msg == "settings.SEGMENT: unknown option 'PAGE_CALL'."
    assert messages[0].hint == "Did you mean 'PAGE_CALLS'?"
    assert messages[1].hint == "Did you mean 'FLUSH_AT'?"


def test_e002_a_key_written_as_its_environment_variable_names_the_option(settings: Any) -> None:
    # SEGMENT_WRITE_KEY is WRITE_KEY, not the look-alike BROWSER_WRITE_KEY (whose
    # key every browser gets).
    settings.SEGMENT = {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": "https://e.example"}
    messages = [m for m in run_checks() if m.id == "segment_django.E002"]
    assert [m.hint for m in messages] == ["Did you mean 'WRITE_KEY'?", "Did you mean 'HOST'?"]


@pytest.mark.parametrize(
    ("segment", "text"),
    [
        ({"EXCLUDE_PATHS": ["("]}, "EXCLUDE_PATHS: '(' is not a valid regular expression"),
        ({"TRUSTED_PROXIES": "nope"}, "TRUSTED_PROXIES: 'nope' is not an IP address"),
        ({"USER_ID": "no.such.hook"}, "USER_ID: cannot import 'no.such.hook'"),
        ({"FLUSH_AT": 0}, "FLUSH_AT must be between 1 and 2500"),
        ({"HOST": "ftp://x"}, "HOST must be an http:// or https:// URL"),
        ({"SEND": "no"}, "SEND must be True or False"),
        (
            {"EXCLUDE_PATHS": ["^/a/"], "exclude_paths": ["^/b/"]},
            "'EXCLUDE_PATHS' and 'exclude_paths' are the same option",
        ),
        ({"RETRY_BACKOFF_MIN": 100}, "RETRY_BACKOFF_MAX must be at least RETRY_BACKOFF_MIN"),
        ({"COOKIE_MAX_AGE": 0.5}, "COOKIE_MAX_AGE must be a positive number of seconds"),
        ({"COOKIE_MAX_AGE": float("inf")}, "COOKIE_MAX_AGE must be a positive number of seconds"),
        ({"COOKIE_MAX_AGE": float("nan")}, "COOKIE_MAX_AGE must be a positive number of seconds"),
        ({"USER_ID": ".hooks:user_id"}, "USER_ID: '.hooks:user_id' is a relative path"),
        ({"PAGE_NAME": ".hooks.name"}, "PAGE_NAME: '.hooks.name' is a relative path"),
        ({"CSP_NONCE": ".hooks:nonce"}, "CSP_NONCE: '.hooks:nonce' is a relative path"),
        # Called in the request's thread: a coroutine would count as "yes" or no user.
        (
            {"USER_ID": "tests.django.hooks.async_user_id"},
            "USER_ID must be a plain function, not async def",
        ),
        (
            {"PAGE_FILTER": "tests.django.hooks.async_page_filter"},
            "PAGE_FILTER must be a plain function, not async def",
        ),
        (
            {"IDENTIFY_ON_LOGIN": "tests.django.hooks.async_identify_on_login"},
            "IDENTIFY_ON_LOGIN must be a plain function, not async def",
        ),
        ({"IDENTIFY_ON_LOGIN": "yes"}, "IDENTIFY_ON_LOGIN must be True, False, or a callable"),
        # Called so at every request, it would fail at every one.
        (
            {"CONSENT": "tests.django.hooks.consent_of_two"},
            "CONSENT is called with 1 positional argument; function (request: 'Any', "
            "response: 'Any') -> 'bool' cannot take them: missing a required argument",
        ),
        (
            {"USER_ID": "tests.django.hooks.user_id_of_nothing"},
            "USER_ID is called with 1 positional argument",
        ),
        # Parsed as the settings are checked, not as the first batch is sent.
        (
            {
                "OAUTH_CLIENT_ID": "client-1",
                "OAUTH_KEY_ID": "key-1",
                "OAUTH_CLIENT_KEY": PEM_WITHOUT_A_KEY,
            },
            "OAUTH_CLIENT_KEY is not a PEM private key",
        ),
        (
            {"COOKIE_NAME": "__Host-ajs", "COOKIE_DOMAIN": ".example.com"},
            "COOKIE_NAME '__Host-ajs' cannot go with COOKIE_DOMAIN",
        ),
        ({"BEFORE_SEND": "tests.django.hooks.no_such_hook"}, "BEFORE_SEND: cannot import"),
        # A name Django's own cookies have: each would overwrite the other.
        (
            {"COOKIE_NAME": "sessionid"},
            "COOKIE_NAME 'sessionid' is already the name of another cookie "
            "(settings.SESSION_COOKIE_NAME)",
        ),
        ({"USER_COOKIE_NAME": "csrftoken"}, "(settings.CSRF_COOKIE_NAME)"),
        ({"COOKIE_NAME": "django_language"}, "(settings.LANGUAGE_COOKIE_NAME)"),
        # django.contrib.messages, whose default storage keeps messages in a cookie.
        ({"COOKIE_NAME": "messages"}, "(django.contrib.messages (its cookie storage))"),
        ({"COOKIE_NAME": "uid", "USER_COOKIE_NAME": "uid"}, "both 'uid'"),
    ],
)
def test_e003_invalid_values_name_the_option(
    settings: Any, segment: dict[str, Any], text: str
) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", **segment}
    messages = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert [m.id for m in messages] == ["segment_django.E003"]
    assert text in messages[0].msg


def deploy_ids(settings: Any, **segment: Any) -> list[str]:
    settings.SEGMENT = segment
    messages = run_checks(include_deployment_checks=True)
    return [m.id for m in messages if m.id and m.id.startswith("segment_django.")]


def test_several_problems_are_all_reported(settings: Any) -> None:
    settings.DEBUG = False
    assert deploy_ids(settings, PAGE_CALL=True, COOKIE_FORMAT="json", FLUSH_AT="x") == [
        "segment_django.E002",
        "segment_django.E003",
        "segment_django.E003",
        "segment_django.E004",
    ]


def test_e004_and_w001_missing_write_key(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DEBUG = False
    assert deploy_ids(settings) == ["segment_django.E004"]
    assert deploy_ids(settings, SEND=False) == []
    assert deploy_ids(settings, SEND=0) == []  # off, as the client reads it
    assert deploy_ids(settings, SEND=1) == ["segment_django.E004"]
    settings.DEBUG = True
    assert ids(settings) == ["segment_django.W001"]
    assert deploy_ids(settings) == ["segment_django.W001"]
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "from-env")
    assert ids(settings) == []


def test_an_unusable_environment_variable_is_named_as_such(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "from-env\n")
    settings.SEGMENT = {"FLUSH_AT": 5}
    [message] = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert message.id == "segment_django.E003"
    assert "environment variable SEGMENT_WRITE_KEY" in message.msg
    assert not message.msg.startswith("settings.SEGMENT")


def test_a_module_level_write_key_is_a_write_key(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """analytics-python's ``analytics.write_key = ...``, kept after changing the import."""
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    settings.DEBUG = False
    assert deploy_ids(settings) == []
    assert deploy_ids(settings, FLUSH_AT=5) == []
    settings.DEBUG = True
    assert ids(settings) == []


def test_w009_the_browser_key_is_the_server_key(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ids(settings, WRITE_KEY="k-server", BROWSER_WRITE_KEY="k-browser") == []
    settings.SEGMENT = {"WRITE_KEY": "k-server", "BROWSER_WRITE_KEY": "k-server"}
    [message] = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert message.id == "segment_django.W009"
    assert message.msg.startswith("BROWSER_WRITE_KEY is the server's WRITE_KEY: ")
    assert message.hint == (
        "Give BROWSER_WRITE_KEY the write key of a website (analytics.js) source."
    )
    # The server's key wherever it comes from: the module-level setting, the environment.
    monkeypatch.setattr(segment_core, "write_key", "k-module")
    assert ids(settings, BROWSER_WRITE_KEY="k-module") == ["segment_django.W009"]
    monkeypatch.setattr(segment_core, "write_key", None)
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "k-env")
    assert ids(settings, BROWSER_WRITE_KEY="k-env") == ["segment_django.W009"]
    assert ids(settings, WRITE_KEY="k-server", BROWSER_WRITE_KEY="k-env") == []


def test_a_missing_write_key_fails_only_the_deployment_check(settings: Any) -> None:
    """migrate and test run the ordinary checks: no key must not stop them."""
    settings.DEBUG = False
    assert ids(settings) == []
    assert deploy_ids(settings) == ["segment_django.E004"]


def test_e005_middleware_before_authentication(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSION, OURS, AUTH]
    assert ids(settings, WRITE_KEY="k") == ["segment_django.E005"]


def test_e005_a_subclass_of_authentication_after_the_middleware(settings: Any) -> None:
    project_auth = "tests.django.test_checks.ProjectAuthentication"
    settings.MIDDLEWARE = [SESSION, OURS, project_auth]
    assert ids(settings, WRITE_KEY="k") == ["segment_django.E005"]
    settings.MIDDLEWARE = [SESSION, project_auth, OURS]
    assert ids(settings, WRITE_KEY="k") == []
    # request.user is set before the middleware already: one after it changes nothing
    settings.MIDDLEWARE = [SESSION, AUTH, OURS, project_auth]
    assert ids(settings, WRITE_KEY="k") == []


def test_w002_middleware_missing(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSION, AUTH]
    assert ids(settings, WRITE_KEY="k") == ["segment_django.W002"]


def test_a_subclass_of_the_middleware_counts(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSION, AUTH, "tests.django.test_checks.OurSubclass"]
    assert ids(settings, WRITE_KEY="k") == []
    settings.MIDDLEWARE = [SESSION, "tests.django.test_checks.OurSubclass", AUTH]
    assert ids(settings, WRITE_KEY="k") == ["segment_django.E005"]


def test_w007_the_middleware_listed_twice(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSION, AUTH, OURS, "tests.django.test_checks.OurSubclass"]
    assert ids(settings, WRITE_KEY="k") == ["segment_django.W007"]


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        ([UPDATE_CACHE, SESSION, AUTH, OURS, FETCH_FROM_CACHE], []),
        ([SESSION, AUTH, OURS, UPDATE_CACHE, FETCH_FROM_CACHE], []),
        ([SESSION, AUTH, OURS, CACHE], []),
        ([UPDATE_CACHE, SESSION, AUTH, FETCH_FROM_CACHE, OURS], ["segment_django.W008"]),
        ([SESSION, AUTH, CACHE, OURS], ["segment_django.W008"]),
    ],
)
def test_w008_the_middleware_after_the_cache_s_fetch(
    settings: Any, middleware: list[str], expected: list[str]
) -> None:
    settings.MIDDLEWARE = middleware
    assert ids(settings, WRITE_KEY="k") == expected


REMOTE_USER = "django.contrib.auth.middleware.RemoteUserMiddleware"
PERSISTENT_REMOTE_USER = "django.contrib.auth.middleware.PersistentRemoteUserMiddleware"


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        ([SESSION, AUTH, OURS, REMOTE_USER], []),
        ([SESSION, AUTH, REMOTE_USER, OURS], ["segment_django.W010"]),
        ([SESSION, AUTH, PERSISTENT_REMOTE_USER, OURS], ["segment_django.W010"]),
    ],
)
def test_w010_the_middleware_after_one_that_logs_users_in(
    settings: Any, middleware: list[str], expected: list[str]
) -> None:
    settings.MIDDLEWARE = middleware
    assert ids(settings, WRITE_KEY="k") == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://collector.example", ["segment_django.W003"]),
        ("HTTP://collector.example", ["segment_django.W003"]),  # the client sends it so too
        ("https://events.eu1.segmentapis.com", []),
        ("http://localhost:8765", []),
        ("http://127.0.0.1:8765", []),
        ("http://[::1]:8765", []),
        ("http://127.0.0.2:8765", []),  # all of 127.0.0.0/8 is this machine
        ("http://app.localhost:8765", []),  # so is every name under localhost
        ("http://localhost.example:8765", ["segment_django.W003"]),
    ],
)
def test_w003_host_not_https(settings: Any, host: str, expected: list[str]) -> None:
    assert ids(settings, WRITE_KEY="k", HOST=host) == expected


def test_w003_host_from_the_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_HOST", "http://collector.example")
    assert ids(settings, WRITE_KEY="k") == ["segment_django.W003"]


def test_w004_the_user_cookie_is_believed(settings: Any) -> None:
    assert ids(settings, WRITE_KEY="k", USER_ID_FROM_COOKIE=True) == ["segment_django.W004"]
    assert ids(settings, WRITE_KEY="k", user_id_from_cookie=1) == ["segment_django.W004"]
    assert ids(settings, WRITE_KEY="k", USER_ID_FROM_COOKIE=False) == []
    assert ids(settings, WRITE_KEY="k", USER_ID_FROM_COOKIE=0) == []


def test_the_middleware_without_the_app_connects_its_receivers_and_says_so(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from django.contrib.auth.signals import user_logged_in, user_logged_out
    from django.http import HttpResponse
    from django.test import modify_settings

    from segment_django import middleware

    settings.SEGMENT = {"WRITE_KEY": "k", "SEND": False}
    with modify_settings(INSTALLED_APPS={"remove": "segment_django"}):
        user_logged_in.disconnect(dispatch_uid="segment_django.login")
        user_logged_out.disconnect(dispatch_uid="segment_django.logout")
        told = middleware._without_the_app_told
        middleware._without_the_app_told = False
        try:
            SegmentMiddleware(lambda request: HttpResponse())
            SegmentMiddleware(lambda request: HttpResponse())
        finally:
            middleware._without_the_app_told = told
    # (lookup key, receiver[, is async]): the key is (dispatch_uid, sender's id).
    uids = [entry[0][0] for entry in (*user_logged_in.receivers, *user_logged_out.receivers)]
    assert {"segment_django.login", "segment_django.logout"} <= set(uids)
    warnings = [r.getMessage() for r in caplog.records if r.name == "segment.django"]
    assert warnings == [
        "segment: SegmentMiddleware is in MIDDLEWARE but 'segment_django' is not in "
        "INSTALLED_APPS: add it, for the system checks of the SEGMENT setting (manage.py "
        "check) and for the client of management commands and signal receivers"
    ]


def test_a_cookie_name_taken_by_django_stops_the_middleware(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from segment_django import conf

    settings.SESSION_COOKIE_NAME = "shop_session"
    settings.SEGMENT = {"WRITE_KEY": "k", "SEND": False, "COOKIE_NAME": "shop_session"}
    with pytest.raises(ImproperlyConfigured, match=r"settings.SESSION_COOKIE_NAME"):
        conf.validate()
    settings.SEGMENT = {"WRITE_KEY": "k", "SEND": False, "COOKIE_NAME": "sessionid"}
    conf.validate()  # Django's default name is free once the session's cookie is renamed


def test_the_csrf_cookie_name_is_free_when_the_token_is_kept_in_the_session(
    settings: Any,
) -> None:
    settings.CSRF_USE_SESSIONS = True
    settings.SEGMENT = {"WRITE_KEY": "k", "COOKIE_NAME": "csrftoken"}
    messages = [m for m in run_checks() if m.id and m.id.startswith("segment_django.")]
    assert messages == []


def test_the_messages_cookie_is_free_when_messages_are_kept_in_the_session(
    settings: Any,
) -> None:
    settings.MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
    settings.SEGMENT = {"WRITE_KEY": "k", "COOKIE_NAME": "messages"}
    assert [m.id for m in run_checks() if m.id and m.id.startswith("segment_django.")] == []
