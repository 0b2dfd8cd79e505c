"""The test app with signal receivers of its own that track, connected after
``SegmentCelery(app)``, as an app's tasks module connects them."""

from __future__ import annotations

import os
from typing import Any

from celery import signals

import segment_core
from segment_core.scope import analytics
from tests.celery.app import app

__all__ = ["app"]


@signals.task_postrun.connect
def track_task_finished(task: Any = None, **kw: Any) -> None:
    analytics().track("Task Finished", {"task": task.name})


@signals.worker_process_shutdown.connect
def track_child_stopped(**kw: Any) -> None:
    segment_core.track("worker", "Child Stopped", {"pid": os.getpid()})


@signals.worker_shutdown.connect
def track_worker_stopped(**kw: Any) -> None:
    segment_core.track("worker", "Worker Stopped", {"pid": os.getpid()})
