"""``settings.SEGMENT``, read on access, and the objects built from it.

The client and the web options are built once, on first use, and rebuilt when
the settings change (``override_settings``, pytest-django's ``settings``). Under
a test runner (and ``manage.py testserver``) the client is diverted to
``segment_core.testing.outbox`` unless ``SEND_IN_TESTS`` is True.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_script_prefix

import segment_core
from segment_core.adapters import (
    build_client,
    default_client,
    offer_as_default,
    withdraw_as_default,
)
from segment_core.client import Client
from segment_core.config import ALIASES, DEFAULT_HOST, FROM_ENVIRONMENT, Config, read_flag
from segment_core.config import option_names as client_option_names
from segment_core.testing import divert_in_tests, pytest_running, settle_divert
from segment_core.web import WebOptions, check_cookie_names, check_plain_hooks, split_options
from segment_core.web import option_names as web_option_names

__all__ = [
    "built_client",
    "conf",
    "django_message",
    "first_request",
    "get_client",
    "improperly_configured",
    "on_setting_changed",
    "running_tests",
    "web_flag",
    "web_options",
]

logger = logging.getLogger("segment.django")

_lock = threading.Lock()
_client: Client | None = None
#: Whether ``_client`` was built from ``settings.SEGMENT`` (else it is segment_core's).
_owned = False
#: The client last diverted under test runners: set up once, not at each call.
_diverted: Client | None = None
_web_options: WebOptions | None = None
#: What keeps a client from being built, and the client that discards meanwhile.
_unbuilt: tuple[str, Client] | None = None


class Settings:
    """Typed access to the settings this app reads, at the moment of access."""

    @property
    def SEGMENT(self) -> Any:
        return getattr(settings, "SEGMENT", {})

    @property
    def options(self) -> Mapping[str, Any]:
        """``SEGMENT``, checked to be a dict."""
        segment = self.SEGMENT
        if not isinstance(segment, Mapping):
            raise ImproperlyConfigured(
                f"settings.SEGMENT must be a dict, got {type(segment).__name__}"
            )
        return segment

    @property
    def asset_paths(self) -> tuple[str, ...]:
        """Patterns for ``STATIC_URL`` and ``MEDIA_URL`` when they are served locally."""
        # Django puts the script prefix ("/", or FORCE_SCRIPT_NAME's "/app/") before a
        # relative URL, and so turns an unset MEDIA_URL into the prefix itself: the
        # start of every page's path, not of assets. So is "/".
        page_roots = ("", get_script_prefix().strip("/"))
        patterns = []
        for url in (getattr(settings, "STATIC_URL", None), getattr(settings, "MEDIA_URL", None)):
            if (
                url
                and "://" not in url
                and not url.startswith("//")
                and url.strip("/") not in page_roots
            ):
                patterns.append("^" + re.escape(url if url.startswith("/") else f"/{url}"))
        return tuple(patterns)


conf = Settings()


def django_message(error: Exception | str) -> str:
    """An option error as a Django user reads it: ``FLUSH_AT must be ...``.

    Option names are upper-cased where they cannot be plain words: at the start
    of the message, or when they contain an underscore.
    """
    names = web_option_names() | client_option_names() | set(ALIASES)

    def upper(match: re.Match[str]) -> str:
        word = match[0]
        is_name = word in names and (match.start() == 0 or "_" in word)
        return word.upper() if is_name else word

    return re.sub(r"(?<!['\w])[a-z][a-z_]*\b(?!')", upper, str(error))


def improperly_configured(error: Exception) -> ImproperlyConfigured:
    if FROM_ENVIRONMENT in str(error):  # not a value of settings.SEGMENT
        return ImproperlyConfigured(str(error))
    return ImproperlyConfigured(f"settings.SEGMENT: {django_message(error)}")


def _split() -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return split_options(conf.options)
    except ValueError as exc:
        raise improperly_configured(exc) from None


def _build_web_options(web: dict[str, Any]) -> WebOptions:
    try:
        options = WebOptions.from_mapping(web)
        check_plain_hooks(options)  # Django calls them in the request's thread
        check_cookie_names(options.cookie_name, options.user_cookie_name, django_cookies())
        # Django knows where its assets live: never count them as pages. (replace()
        # checks every value again.)
        return replace(options, exclude_paths=(*options.exclude_paths, *conf.asset_paths))
    except ValueError as exc:
        raise improperly_configured(exc) from None


def django_cookies() -> dict[str, str]:
    """The cookies Django and its contrib apps keep, by name, to the setting naming each."""
    taken: dict[str, str] = {}
    for setting in ("LANGUAGE_COOKIE_NAME", "CSRF_COOKIE_NAME", "SESSION_COOKIE_NAME"):
        if setting == "CSRF_COOKIE_NAME" and getattr(settings, "CSRF_USE_SESSIONS", False):
            continue  # the token is kept in the session: no such cookie
        name = getattr(settings, setting, None)
        if isinstance(name, str) and name:
            taken[name] = f"settings.{setting}"
    messages = _messages_cookie()
    if messages is not None:
        taken.setdefault(messages, "django.contrib.messages (its cookie storage)")
    return taken


def _messages_cookie() -> str | None:
    """The cookie of ``django.contrib.messages``, installed with a storage that keeps
    messages in a cookie (``CookieStorage``, or ``FallbackStorage``, the default)."""
    from django.apps import apps

    if not apps.ready or not apps.is_installed("django.contrib.messages"):
        return None
    try:
        from django.contrib.messages.storage.cookie import CookieStorage
        from django.contrib.messages.storage.fallback import FallbackStorage
        from django.utils.module_loading import import_string

        storage = import_string(settings.MESSAGE_STORAGE)
    except Exception:  # Django's own check says what is wrong with it
        return None
    if isinstance(storage, type) and issubclass(storage, CookieStorage):
        name = storage.cookie_name
    elif isinstance(storage, type) and issubclass(storage, FallbackStorage):
        name = CookieStorage.cookie_name
    else:
        return None
    return name if isinstance(name, str) and name else None


def validate() -> None:
    """Raise :class:`ImproperlyConfigured` if ``settings.SEGMENT`` is invalid."""
    client_options, _ = _split()
    web_options()
    try:
        Config.from_options(**client_options)
    except (TypeError, ValueError) as exc:
        raise improperly_configured(exc) from None


def web_options() -> WebOptions:
    """The :class:`WebOptions` from ``settings.SEGMENT`` (built once per settings)."""
    global _web_options
    options = _web_options
    if options is None:
        options = _web_options = _build_web_options(_split()[1])
    return options


def get_client() -> Client:
    """This process's client: built from ``settings.SEGMENT`` on first use, or, when
    it names no client option, ``segment_core``'s default client (the module-level
    settings' ``segment_core.write_key``, ``host``, ...).

    A client it builds also becomes ``segment_core``'s default client (unless one
    exists), so ``segment_core.track(...)`` and ``analytics()`` outside a request
    use it too; one without a write key only until the module-level settings or
    ``SEGMENT_WRITE_KEY`` give one (see :func:`segment_core.adapters.offer_as_default`).

    Settings no client can be built from give a client that discards, and one
    ERROR naming the problem: the requests of a running site go on, untracked,
    rather than fail. :func:`built_client` raises it instead.
    """
    client = _client
    # _kept_client(), inline: asked at every request.
    if client is None or (not _owned and client is not segment_core.default_client):
        try:
            client = _find_client()
        except ImproperlyConfigured as problem:
            client = _discarding_client(problem)
    return client


def built_client() -> Client:
    """:func:`get_client`, or :class:`ImproperlyConfigured` naming what keeps a
    client from being built (for a command that reports on the setup)."""
    return _kept_client() or _find_client()


def _kept_client() -> Client | None:
    """The client found before, while it is still the one: built from the settings,
    or segment_core's default client as long as the app has not replaced it."""
    client = _client
    if client is not None and (_owned or client is segment_core.default_client):
        return client
    return None


def _discarding_client(problem: ImproperlyConfigured) -> Client:
    """The client that stands in while ``problem`` keeps one from being built: one
    per problem, which it names once, as an ERROR. (Not kept as the client: settings
    without client options take the module-level ones, which an app's ``ready()``
    may still complete, so the next call asks again.)"""
    global _unbuilt
    with _lock:
        unbuilt = _unbuilt
        if unbuilt is None or unbuilt[0] != str(problem):
            logger.error(
                "segment: no client built: %s; its events are discarded until it is fixed",
                problem,
            )
            # No key, host or spool of the settings, the module's or the environment's:
            # one of them may be what is wrong. Without a key and sending nothing, no
            # spool is opened: the directory named (os.sep) is never used.
            stand_in = Client("", host=DEFAULT_HOST, send=False, spool_dir=os.sep)
            unbuilt = _unbuilt = (str(problem), stand_in)
    return unbuilt[1]


def _find_client() -> Client:
    global _client, _owned
    with _lock:
        kept = _kept_client()
        if kept is not None:
            return kept
        client_options, web = _split()
        try:
            client = build_client(client_options) if client_options else default_client()
        except (TypeError, ValueError) as exc:
            if client_options or FROM_ENVIRONMENT in str(exc):
                raise improperly_configured(exc) from None
            # Not settings.SEGMENT's: the module-level settings it left the client to.
            raise ImproperlyConfigured(f"segment_core's module-level settings: {exc}") from None
        if client is not _diverted and (
            client_options
            or client in segment_core._made_from_settings
            or client is segment_core._keyless_client
        ):  # one the app built and made the default is its own: never diverted
            _divert_in_tests(client, web)
        if client_options:
            offer_as_default(client)  # diverted first: a test's module-level call sends nothing
        if client_options or client.config.write_key:
            _client, _owned = client, bool(client_options)
        # else: the module-level settings have no write key yet (an app's ready()
        # may set one later): asked again at the next call.
        return client


def _module_client_made(client: Client) -> None:
    """segment_core made its default client from its module-level settings (a key set
    after Django started, the default client reset): Django's test mode for it from its
    first message on, when ``SEGMENT`` names no client option (Django sends through it;
    else the client is none of Django's, and is left alone, as one the app made).

    Called with segment_core's lock held: settings not loaded yet are left alone (their
    module, imported now, could make a module-level call, which waits for that lock).
    """
    from django.conf import settings
    from django.utils.functional import empty

    if settings._wrapped is empty:  # not loaded: not a Django process yet
        return
    try:
        client_options, web = _split()
    except Exception:  # settings that are bad: checked elsewhere
        return
    if not client_options:
        _divert_in_tests(client, web)


segment_core._on_made_from_settings.append(_module_client_made)


def _divert_in_tests(client: Client, web: Mapping[str, Any]) -> None:
    """Under a test runner, ``client``'s events go to ``segment_core.testing.outbox``."""
    global _diverted
    _diverted = client
    divert_in_tests(client, send=web_flag(web, "send_in_tests"), running=_tests_running_or_to_come)
    if _first_request_seen:  # a runner that runs this process has started by then
        settle_divert(client)


#: Whether this process has served a request (see :func:`first_request`).
_first_request_seen = False


def first_request() -> None:
    """At the process's first request, a test runner that runs it has started: the
    clients whose test mode waited to be known (Django's, and the default client
    segment_core made from its module-level settings) are settled now."""
    global _first_request_seen
    _first_request_seen = True
    settle_divert(get_client())
    made = segment_core.default_client
    if made is not None and made in segment_core._made_from_settings:
        settle_divert(made)


def web_flag(web: Mapping[str, Any], name: str) -> bool:
    """A yes/no web option of the settings, as the options read it (``1`` is on); a
    bad value, which the system checks report, is off."""
    value = web.get(name)
    try:
        return value is not None and read_flag(name, value)
    except ValueError:
        return False


#: The commands that run this process for tests: ``testserver`` serves a test
#: database to browser tests, and sets up no test environment to be found.
_TEST_COMMANDS = frozenset({"test", "testserver"})


def running_tests() -> bool:
    """Django's test runner, ``manage.py testserver``, pytest-django or pytest is
    running this process for tests.

    A runner sets up Django's test environment (``setup_test_environment()``, which
    a runner imports ``django.test.utils`` for). ``mail.outbox`` alone says nothing:
    the locmem e-mail backend makes one in any process.
    """
    utils = sys.modules.get("django.test.utils")
    if utils is not None and hasattr(getattr(utils, "_TestState", None), "saved_data"):
        return True
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in _TEST_COMMANDS or "pytest_django" in sys.modules:
        return True
    return pytest_running()  # plain pytest, without pytest-django


def _tests_running_or_to_come() -> bool | None:
    """True under a test runner; else None (not known yet): a ``runtests.py`` calls
    ``django.setup()`` (where an app's ``ready()`` may send) before its runner sets up
    the test environment. Asked again as messages come, until the first request."""
    return True if running_tests() else None


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Forget what was built from settings that changed (``setting_changed`` receiver)."""
    global _client, _diverted, _web_options, _unbuilt
    if setting in ("SEGMENT", "STATIC_URL", "MEDIA_URL"):
        _web_options = None
    if setting != "SEGMENT":
        return
    with _lock:
        old, _client, _diverted, _unbuilt = _client, None, None, None
    made = segment_core.default_client
    if made is not None and made in segment_core._made_from_settings:
        # segment_core's, made from its module-level settings, which the settings before
        # diverted or let send (SEND_IN_TESTS), or a test made: as the new settings say,
        # at once, not at Django's next request (a module-level call may come first).
        with contextlib.suppress(Exception):  # bad settings: checked elsewhere
            _divert_in_tests(made, _split()[1])
    if old is None or not _owned:  # segment_core's default client is not Django's to stop
        return
    was_default = withdraw_as_default(old)
    # Deliver what the old client accepted, without holding up the caller for long.
    old.shutdown(timeout=2.0)
    if was_default or segment_core.default_client is None:
        # Built now from the new settings (and diverted in tests): left for later, a
        # call of segment_core's module API first would make a client of its own.
        with contextlib.suppress(ImproperlyConfigured):  # settings a test means to be bad
            get_client()
