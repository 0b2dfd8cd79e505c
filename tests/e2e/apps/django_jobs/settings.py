"""The e2e Django site, plus Celery on the test's Redis and a user id from a header.

The write key and the host are in ``settings.SEGMENT`` only (from ``TEST_WRITE_KEY``
and ``TEST_SEGMENT_HOST``, not the variables the client itself reads), as in a
project that configures Segment in its settings. ``TEST_REDIS_URL`` is the broker;
``X-Test-User`` (through the ``USER_ID`` hook) stands in for a logged-in user.
"""

from __future__ import annotations

import os

from tests.e2e.apps.django_site.settings import *  # noqa: F403
from tests.e2e.apps.django_site.settings import INSTALLED_APPS, SEGMENT

INSTALLED_APPS = [*INSTALLED_APPS, "tests.e2e.apps.django_jobs"]
ROOT_URLCONF = "tests.e2e.apps.django_jobs.urls"
SEGMENT = {
    **SEGMENT,
    "WRITE_KEY": os.environ.get("TEST_WRITE_KEY"),
    "HOST": os.environ.get("TEST_SEGMENT_HOST"),
    "USER_ID": "tests.e2e.apps.django_jobs.views.user_from_header",
}

CELERY_BROKER_URL = os.environ.get("TEST_REDIS_URL", "")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
