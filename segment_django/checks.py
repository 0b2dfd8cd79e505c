"""System checks for ``settings.SEGMENT`` and the middleware's place.

- ``segment_django.E001``: ``SEGMENT`` is not a dict.
- ``segment_django.E002``: an unknown key in ``SEGMENT`` (the hint names the closest).
- ``segment_django.E003``: an invalid value.
- ``segment_django.E004``: no write key (neither ``WRITE_KEY`` nor
  ``segment_core.write_key`` nor the environment's), outside ``DEBUG``, with ``SEND`` on; a
  deployment check (``manage.py check --deploy``), so ``migrate`` and ``test``
  run without a key.
- ``segment_django.E005``: the middleware comes before ``AuthenticationMiddleware``
  (or a subclass of it).
- ``segment_django.W001``: no write key, in ``DEBUG``: events are discarded.
- ``segment_django.W002``: the middleware is not in ``MIDDLEWARE``.
- ``segment_django.W003``: ``HOST`` is not https (hosts on this machine excepted).
- ``segment_django.W004``: ``USER_ID_FROM_COOKIE`` is on: visitors can claim any user id.
- ``segment_django.W005``: the analytics.js snippet is configured without
  ``BROWSER_WRITE_KEY``: ``{% segment_snippet %}`` renders nothing.
- ``segment_django.W006``: ``BROWSER_WRITE_KEY`` is set but no Django template
  engine has the ``request`` context processor the tag needs.
- ``segment_django.W007``: the middleware is listed more than once.
- ``segment_django.W008``: the middleware comes after the cache's
  ``FetchFromCacheMiddleware`` (or ``CacheMiddleware``): pages the cache answers
  never reach it.
- ``segment_django.W009``: ``BROWSER_WRITE_KEY`` is the server's write key: the
  snippet would hand it to every browser.
- ``segment_django.W010``: the middleware comes after one that logs users in
  (``RemoteUserMiddleware``, ``PersistentRemoteUserMiddleware``): their logins send
  no ``identify``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.middleware.cache import FetchFromCacheMiddleware
from django.utils.module_loading import import_string

from segment_core.adapters import (
    SERVER_KEY_IN_BROWSER,
    SERVER_KEY_IN_BROWSER_FIX,
    hands_server_key_to_browsers,
    server_write_key,
)
from segment_core.config import Config
from segment_core.hosts import is_loopback_url
from segment_core.web import (
    WebOptions,
    check_cookie_names,
    check_plain_hooks,
    missing_browser_key,
    split_options,
)
from segment_django.conf import django_cookies, django_message, improperly_configured, web_flag
from segment_django.middleware import SegmentMiddleware

__all__ = ["check_deployment", "check_settings"]

MIDDLEWARE = "segment_django.middleware.SegmentMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
DJANGO_TEMPLATES = "django.template.backends.django.DjangoTemplates"
REQUEST_PROCESSOR = "django.template.context_processors.request"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    segment = getattr(settings, "SEGMENT", {})
    if not isinstance(segment, Mapping):
        return [
            Error(
                f"settings.SEGMENT must be a dict, got {type(segment).__name__}.",
                hint='For example: SEGMENT = {"WRITE_KEY": "..."}',
                id="segment_django.E001",
            )
        ]
    messages = _check_values(segment)
    if settings.DEBUG:
        messages += _check_write_key(segment)
    messages += _check_host(segment)
    messages += _check_user_cookie(segment)
    messages += _check_browser_key(segment)
    messages += _check_middleware()
    return messages


def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``manage.py check --deploy``: a production settings file must send somewhere."""
    segment = getattr(settings, "SEGMENT", {})
    if not isinstance(segment, Mapping) or settings.DEBUG:
        return []  # E001 reports the first; DEBUG is no deployment
    return _check_write_key(segment)


def _check_values(segment: Mapping[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    client_options: dict[str, Any] = {}
    web_options: dict[str, Any] = {}
    for key, value in segment.items():
        try:
            client, web = split_options({key: value})
            WebOptions.from_mapping(web)
        except (TypeError, ValueError) as exc:
            messages.append(_unknown(exc) if str(exc).startswith("unknown") else _invalid(exc))
            continue
        client_options.update(client)
        web_options.update(web)
    if not messages:
        try:  # together: one option written twice (EXCLUDE_PATHS and exclude_paths)
            split_options(segment)
        except (TypeError, ValueError) as exc:
            messages.append(_invalid(exc))
    if not messages:
        try:  # rules between web options (page_source needs page_calls); hooks' kind
            options = WebOptions.from_mapping(web_options)
            check_plain_hooks(options)
            check_cookie_names(options.cookie_name, options.user_cookie_name, django_cookies())
        except (TypeError, ValueError) as exc:
            messages.append(_invalid(exc))
    try:  # together: some rules span options (retry_backoff_max >= retry_backoff_min)
        Config.from_options(**client_options)
    except (TypeError, ValueError) as exc:
        messages.append(_invalid(exc))
    return messages


def _unknown(exc: Exception) -> Error:
    text, _, hint = str(exc).partition("; ")
    return Error(
        f"settings.SEGMENT: {text}.",
        hint=_sentence(hint) if hint else "See the segment_django documentation.",
        id="segment_django.E002",
    )


def _invalid(exc: Exception) -> Error:
    return Error(f"{improperly_configured(exc)}.", id="segment_django.E003")


def _check_write_key(segment: Mapping[str, Any]) -> list[CheckMessage]:
    options = {str(key).upper(): value for key, value in segment.items()}
    if _server_write_key(segment):
        return []
    if "SEND" in options and _sending_off(options["SEND"]):
        return []
    text = "Segment has no write key: every event is discarded."
    hint = (
        'Set SEGMENT = {"WRITE_KEY": ...}, segment_core.write_key or the SEGMENT_WRITE_KEY '
        'environment variable, or SEGMENT["SEND"] = False to turn sending off on purpose.'
    )
    if settings.DEBUG:
        return [Warning(text, hint=hint, id="segment_django.W001")]
    return [Error(text, hint=hint, id="segment_django.E004")]


def _server_write_key(segment: Mapping[str, Any]) -> str | None:
    """The write key Django's client sends with (``WRITE_KEY``, else the module-level
    setting or the environment's), read without making the client."""
    try:
        client_options, _ = split_options(segment)
    except (TypeError, ValueError):  # reported by _check_values; the key may be fine
        client_options = {
            "write_key": next(
                (value for key, value in segment.items() if str(key).upper() == "WRITE_KEY"), None
            )
        }
    return server_write_key(client_options)


def _sending_off(send: object) -> bool:
    """Whether ``SEND`` turns sending off, read as the client reads it (0 is off too);
    an invalid value is E003's to report."""
    try:
        return not Config.from_options(send=send).send
    except (TypeError, ValueError):
        return False


def _check_host(segment: Mapping[str, Any]) -> list[CheckMessage]:
    options = {str(key).upper(): value for key, value in segment.items()}
    host = options.get("HOST") or os.environ.get("SEGMENT_HOST")
    if not isinstance(host, str) or not host.lower().startswith("http://"):
        return []
    if is_loopback_url(host):
        return []
    return [
        Warning(
            f"Segment HOST {host!r} is not https: the write key and events travel in clear.",
            hint="Use an https:// URL.",
            id="segment_django.W003",
        )
    ]


def _check_user_cookie(segment: Mapping[str, Any]) -> list[CheckMessage]:
    options = {str(key).lower(): value for key, value in segment.items()}
    if not web_flag(options, "user_id_from_cookie"):
        return []
    return [
        Warning(
            "USER_ID_FROM_COOKIE is on: events of visitors the app does not know carry the "
            "user id of the ajs_user_id cookie, which any visitor can write.",
            hint="Leave it off unless events attributed to a forged user id are harmless; "
            "users the app authenticates are found without it.",
            id="segment_django.W004",
        )
    ]


def _check_browser_key(segment: Mapping[str, Any]) -> list[CheckMessage]:
    try:
        _, web = split_options(segment)
        options = WebOptions.from_mapping(web)
    except (TypeError, ValueError):
        return []  # reported by _check_values
    messages: list[CheckMessage] = []
    if hands_server_key_to_browsers(options.browser_write_key, _server_write_key(segment)):
        messages.append(
            Warning(
                f"{django_message(SERVER_KEY_IN_BROWSER)}.",
                hint=f"{_sentence(django_message(SERVER_KEY_IN_BROWSER_FIX))}.",
                id="segment_django.W009",
            )
        )
    if options.browser_write_key is not None and not _request_in_templates():
        messages.append(
            Warning(
                "{% segment_snippet %} needs the request in the template context, and no "
                "Django template engine adds it.",
                hint=f"Add {REQUEST_PROCESSOR!r} to the context_processors of TEMPLATES.",
                id="segment_django.W006",
            )
        )
    if missing_browser_key(options):
        messages.append(
            Warning(
                "The analytics.js snippet has no browser write key: {% segment_snippet %} "
                "renders nothing.",
                hint='Set SEGMENT["BROWSER_WRITE_KEY"] to the write key of your website '
                "source; the server's WRITE_KEY is never sent to browsers.",
                id="segment_django.W005",
            )
        )
    return messages


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _request_in_templates() -> bool:
    """Whether a Django-templates engine puts the request in every context (or none
    exists: Jinja2 users call ``segment_django.segment_snippet(request)``)."""
    engines = [
        engine
        for engine in getattr(settings, "TEMPLATES", None) or ()
        if isinstance(engine, Mapping) and engine.get("BACKEND") == DJANGO_TEMPLATES
    ]
    if not engines:
        return True
    return any(
        REQUEST_PROCESSOR in ((engine.get("OPTIONS") or {}).get("context_processors") or ())
        for engine in engines
    )


def _check_middleware() -> list[CheckMessage]:
    middleware = [str(path) for path in getattr(settings, "MIDDLEWARE", None) or ()]
    listed = [i for i, path in enumerate(middleware) if _is_ours(path)]
    if not listed:
        return [
            Warning(
                "SegmentMiddleware is not in MIDDLEWARE: no automatic page calls and no "
                "request.analytics.",
                hint=f"Add {MIDDLEWARE!r} after {AUTH_MIDDLEWARE!r}.",
                id="segment_django.W002",
            )
        ]
    ours = listed[0]
    messages: list[CheckMessage] = []
    if not any(map(_is_authentication, middleware[:ours])) and any(
        map(_is_authentication, middleware[ours + 1 :])
    ):
        messages.append(
            Error(
                "SegmentMiddleware comes before AuthenticationMiddleware: request.user "
                "is not set when it starts, so events may lack the user id (in async "
                "mode, most do).",
                hint=f"Move {MIDDLEWARE!r} after {AUTH_MIDDLEWARE!r}.",
                id="segment_django.E005",
            )
        )
    if len(listed) > 1:
        messages.append(
            Warning(
                f"SegmentMiddleware is in MIDDLEWARE {len(listed)} times: only the first "
                "one tracks requests.",
                hint="Keep one entry.",
                id="segment_django.W007",
            )
        )
    logins = [path for path in middleware[:ours] if _logs_users_in(path)]
    if logins:
        messages.append(
            Warning(
                f"SegmentMiddleware comes after {logins[0]}, which logs users in: its "
                "logins send no identify, and their visitors get no anonymous-id cookie.",
                hint=f"Move {MIDDLEWARE!r} before it (still after {AUTH_MIDDLEWARE!r}).",
                id="segment_django.W010",
            )
        )
    fetch = next((i for i, path in enumerate(middleware) if _is_cache_fetch(path)), None)
    if fetch is not None and fetch < ours:
        messages.append(
            Warning(
                f"SegmentMiddleware comes after {middleware[fetch]}: the pages the cache "
                "answers get no page call and no anonymous-id cookie.",
                hint=f"Move {MIDDLEWARE!r} before it (Django wants the cache's fetch last).",
                id="segment_django.W008",
            )
        )
    return messages


def _is_ours(path: str) -> bool:
    return path == MIDDLEWARE or _is_subclass(path, SegmentMiddleware)


def _is_authentication(path: str) -> bool:
    """Whether ``path`` is Django's ``AuthenticationMiddleware`` (or a subclass): it
    sets ``request.user``."""
    if path == AUTH_MIDDLEWARE:
        return True
    try:
        from django.contrib.auth.middleware import AuthenticationMiddleware
    except Exception:  # no auth app: no request.user to wait for
        return False
    return _is_subclass(path, AuthenticationMiddleware)


def _logs_users_in(path: str) -> bool:
    """Whether ``path`` is Django's ``RemoteUserMiddleware`` (or a subclass): it calls
    ``login()`` itself, as the request passes."""
    try:
        from django.contrib.auth.middleware import RemoteUserMiddleware
    except Exception:  # no auth app: no such login
        return False
    return _is_subclass(path, RemoteUserMiddleware)


def _is_cache_fetch(path: str) -> bool:
    """Whether ``path`` answers from Django's cache (``CacheMiddleware`` does too)."""
    return _is_subclass(path, FetchFromCacheMiddleware)


def _is_subclass(path: str, base: type) -> bool:
    try:
        imported = import_string(path)
    except Exception:  # a broken entry is Django's to report
        return False
    return isinstance(imported, type) and issubclass(imported, base)
