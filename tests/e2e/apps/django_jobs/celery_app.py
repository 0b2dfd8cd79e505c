"""The Celery app of the Django site, as Celery's Django guide sets one up."""

from __future__ import annotations

import os

from celery import Celery

from segment_celery import SegmentCelery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.apps.django_jobs.settings")

app = Celery("django_jobs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
SegmentCelery(app)  # the client: settings.SEGMENT
