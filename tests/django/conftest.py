"""Django settings for these tests only, and fixtures that read what was sent.

Settings are configured here (not through DJANGO_SETTINGS_MODULE) so that other
test directories in the same pytest session are not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

import segment_core

_LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
#: Mail kept in memory: Django 6.1 names the backend in MAILERS (EMAIL_BACKEND is
#: deprecated there).
LOCMEM_MAIL: dict[str, Any] = (
    {"EMAIL_BACKEND": _LOCMEM}
    if django.VERSION < (6, 1)
    else {"MAILERS": {"default": {"BACKEND": _LOCMEM}}}
)

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="segment-django-tests",
        ALLOWED_HOSTS=["testserver", "shop.example"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "rest_framework",
            "rest_framework.authtoken",
            "segment_django",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "segment_django.middleware.SegmentMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "DIRS": [str(Path(__file__).parent / "templates")],
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        **LOCMEM_MAIL,
        ROOT_URLCONF="tests.django.urls",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        STATIC_URL="/assets/",
        USE_TZ=True,
        # Tests that look at what is sent point HOST at the collector; the rest send nothing.
        SEGMENT={"WRITE_KEY": "test-key", "SEND": False},
    )
    # pytest-django sets Django up only for settings known before collection; these
    # are configured as this directory is collected, and its modules import models.
    django.setup()

Sent = Callable[..., list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def _keep_the_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """segment_django makes its client segment_core's default: undo that after each test.
    Settings without client options follow the module's client, diverted in tests: each
    test gets a disabled one of its own."""
    monkeypatch.setattr(segment_core, "default_client", segment_core.default_client)
    monkeypatch.setattr(segment_core, "_keyless_client", None)


@pytest.fixture
def segment(settings: Any, segment_collector: Any) -> Callable[..., None]:
    """Send to the test's collector; call it to add options: ``segment(TRUSTED_PROXIES=1)``."""
    base = {"WRITE_KEY": "test-key", "HOST": segment_collector.url, "SEND_IN_TESTS": True}
    settings.SEGMENT = base

    def configure(**options: Any) -> None:
        settings.SEGMENT = {**base, **options}

    return configure


@pytest.fixture
def sent(segment: Any, segment_collector: Any) -> Sent:
    """Flush the Django client, then return the messages the collector got, oldest first."""
    import segment_django

    def sent(**filters: Any) -> list[dict[str, Any]]:
        assert segment_django.get_client().flush(timeout=10), "the client did not flush in time"
        events = segment_collector.events(**filters)
        assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
        return [e["message"] for e in events]

    return sent


def english_and_french(settings: Any, urlconf: str, *, authentication: bool = True) -> None:
    """Route with ``urlconf`` in a site in English (the default) and French, the
    locale middleware before segment_django's."""
    settings.ROOT_URLCONF = urlconf
    settings.USE_I18N = True
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    settings.LANGUAGE_CODE = "en"
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        *(["django.contrib.auth.middleware.AuthenticationMiddleware"] if authentication else []),
        "segment_django.middleware.SegmentMiddleware",
    ]
