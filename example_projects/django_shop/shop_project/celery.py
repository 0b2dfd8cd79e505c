"""The shop's Celery app, as Celery's Django guide sets one up, plus Segment.

Run a worker from the shop's directory with ``SHOP_CELERY_BROKER`` set::

    celery -A shop_project worker

``SegmentCelery(app)`` makes each task act for the visitor whose request
published it: its events carry the visitor's ids and request context.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

from segment_celery import SegmentCelery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_project.settings")

app = Celery("shop_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
SegmentCelery(app)  # the client: settings.SEGMENT, as in the web process


@worker_init.connect
def _needs_a_broker(**_: object) -> None:
    # Without one, Celery would try RabbitMQ on localhost for ever.
    if not app.conf.broker_url:
        raise SystemExit(
            "set SHOP_CELERY_BROKER (e.g. redis://127.0.0.1:6379/0) to run a worker; "
            "without it the shop sends the order confirmation from a thread of its own"
        )
