"""Segment for Celery: a task's events join the visitor who caused it.

::

    from celery import Celery
    from segment_celery import SegmentCelery

    app = Celery("shop")
    SegmentCelery(app)

A task published during a request carries the visitor (ids, ip, userAgent,
locale, page, campaign) in its message headers; while it runs,
``segment_core.analytics()`` is bound to that visitor. Every worker exit path
(prefork children recycled or stopped, warm shutdown of any pool) delivers what
the process holds, within ``shutdown_timeout``.

PYTEST_DONT_REWRITE (pytest's assertion rewriting leaves the package alone).
"""

from __future__ import annotations

from segment_core.adapters import raise_without_framework, require_framework_version

require_framework_version(adapter="segment_celery", framework="celery", extra="celery")
try:
    from segment_celery._extension import CONFIG_PREFIX, HEADER, SegmentCelery
except ModuleNotFoundError as error:
    raise_without_framework(error, adapter="segment_celery", framework="celery", extra="celery")

__all__ = ["CONFIG_PREFIX", "HEADER", "SegmentCelery"]
