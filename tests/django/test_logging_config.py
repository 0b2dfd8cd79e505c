"""The library's loggers stay on whatever the order of imports and Django's LOGGING.

``dictConfig`` turns off the loggers that exist as it runs unless LOGGING says
``disable_existing_loggers: False``; the library's exist by then when it was
imported before ``django.setup()``, as ``segment_django.asgi`` is in ``asgi.py``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
import django
from django.conf import settings

import segment_core  # before django.setup(), as segment_django.asgi or a settings hook is
from segment_django.asgi import get_asgi_application

settings.configure(
    INSTALLED_APPS=["segment_django"] if sys.argv[1] == "installed" else [],
    SEGMENT={"WRITE_KEY": "k", "SEND": False},
    # No disable_existing_loggers: True, Django's (and dictConfig's) default.
    LOGGING={
        "version": 1,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "root": {"handlers": ["console"], "level": "WARNING"},
    },
)
if sys.argv[2] == "asgi":
    get_asgi_application()
else:
    django.setup()
import logging

logging.getLogger("segment.core").warning("a warning of the client")
logging.getLogger("segment.django").warning("a warning of the adapter")
"""


@pytest.mark.parametrize(
    ("app", "entry"),
    [("installed", "asgi"), ("installed", "setup"), ("not installed", "asgi")],
)
def test_a_logging_setting_without_disable_existing_loggers_leaves_them_on(
    app: str, entry: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, app, entry], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "a warning of the client" in done.stderr
    assert "a warning of the adapter" in done.stderr
