"""``settings.SEGMENT``, read on access, and the objects built from it.

The client and the web options are built once, on first use, and rebuilt when
the settings change (``override_settings``, pytest-django's ``settings``). Under
a test runner the client is diverted to ``segment_core.testing.outbox`` unless
``SEND_IN_TESTS`` is True.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import segment_core
from segment_core.client import Client
from segment_core.config import ALIASES, FROM_ENVIRONMENT, Config
from segment_core.config import option_names as client_option_names
from segment_core.testing import divert, divert_when
from segment_core.web import WebOptions, check_plain_hooks, split_options
from segment_core.web import option_names as web_option_names

__all__ = [
    "conf",
    "django_message",
    "get_client",
    "on_setting_changed",
    "running_tests",
    "web_options",
]

logger = logging.getLogger("segment.django")

_lock = threading.Lock()
_client: Client | None = None
_web_options: WebOptions | None = None


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
        patterns = []
        for url in (getattr(settings, "STATIC_URL", None), getattr(settings, "MEDIA_URL", None)):
            # Django turns an unset MEDIA_URL into "/": a prefix of every page, not assets.
            if url and "://" not in url and not url.startswith("//") and url.strip("/"):
                patterns.append("^" + re.escape(url if url.startswith("/") else f"/{url}"))
        return tuple(patterns)


conf = Settings()


def django_message(error: Exception) -> str:
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


def _improperly_configured(error: Exception) -> ImproperlyConfigured:
    if FROM_ENVIRONMENT in str(error):  # not a value of settings.SEGMENT
        return ImproperlyConfigured(str(error))
    return ImproperlyConfigured(f"settings.SEGMENT: {django_message(error)}")


def _split() -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return split_options(conf.options)
    except ValueError as exc:
        raise _improperly_configured(exc) from None


def _build_web_options(web: dict[str, Any]) -> WebOptions:
    try:
        options = WebOptions.from_mapping(web)
        check_plain_hooks(options)  # Django calls them in the request's thread
        # Django knows where its assets live: never count them as pages. (replace()
        # checks every value again.)
        return replace(options, exclude_paths=(*options.exclude_paths, *conf.asset_paths))
    except ValueError as exc:
        raise _improperly_configured(exc) from None


def validate() -> None:
    """Raise :class:`ImproperlyConfigured` if ``settings.SEGMENT`` is invalid."""
    client_options, _ = _split()
    web_options()
    try:
        Config.from_options(**client_options)
    except (TypeError, ValueError) as exc:
        raise _improperly_configured(exc) from None


def web_options() -> WebOptions:
    """The :class:`WebOptions` from ``settings.SEGMENT`` (built once per settings)."""
    global _web_options
    options = _web_options
    if options is None:
        options = _web_options = _build_web_options(_split()[1])
    return options


def get_client() -> Client:
    """This process's client, built from ``settings.SEGMENT`` on first use.

    It also becomes ``segment_core``'s default client (unless one exists), so
    ``segment_core.track(...)`` and ``analytics()`` outside a request use it too.
    """
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                client_options, web = _split()
                try:
                    _client = Client(**client_options)
                except (TypeError, ValueError) as exc:
                    raise _improperly_configured(exc) from None
                if web.get("send_in_tests") is not True:
                    if running_tests():
                        divert(_client)  # events go to segment_core.testing.outbox
                    else:  # a test runner may start later (a runtests.py script)
                        divert_when(_client, running_tests)
                if segment_core.default_client is None:
                    segment_core.default_client = _client
            client = _client
    return client


def running_tests() -> bool:
    """Django's test runner, pytest-django or pytest is running this process's tests.

    A runner sets up Django's test environment (``setup_test_environment()``, which
    a runner imports ``django.test.utils`` for). ``mail.outbox`` alone says nothing:
    the locmem e-mail backend makes one in any process.
    """
    utils = sys.modules.get("django.test.utils")
    if utils is not None and hasattr(getattr(utils, "_TestState", None), "saved_data"):
        return True
    if sys.argv[1:2] == ["test"] or "pytest_django" in sys.modules:
        return True
    plugin = sys.modules.get("segment_pytest")  # plain pytest, without pytest-django
    return plugin is not None and bool(plugin.running())


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Forget what was built from settings that changed (``setting_changed`` receiver)."""
    global _client, _web_options
    if setting in ("SEGMENT", "STATIC_URL", "MEDIA_URL"):
        _web_options = None
    if setting != "SEGMENT":
        return
    with _lock:
        old, _client = _client, None
    if old is None:
        return
    was_default = segment_core.default_client is old
    if was_default:
        segment_core.default_client = None
    # Deliver what the old client accepted, without holding up the caller for long.
    old.shutdown(timeout=2.0)
    if was_default or segment_core.default_client is None:
        # Built now from the new settings (and diverted in tests): left for later, a
        # call of segment_core's module API first would make a client of its own.
        with contextlib.suppress(ImproperlyConfigured):  # settings a test means to be bad
            get_client()
