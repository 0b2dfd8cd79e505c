"""The shop's Django project. Its Celery app is loaded with Django, so that
``@shared_task`` tasks use it (Celery's Django guide)."""

from __future__ import annotations

from shop_project.celery import app as celery_app

__all__ = ["celery_app"]
