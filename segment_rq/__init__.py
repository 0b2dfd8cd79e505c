"""Segment for RQ: a job's events join the visitor who enqueued it.

::

    from segment_rq import Queue

    queue = Queue(connection=redis)
    queue.enqueue(send_receipt, order.id)   # in a view: carries the visitor

and run the worker with ``rq worker --worker-class segment_rq.Worker``: each job
runs bound to its visitor (``segment_core.analytics()``), and each work-horse
delivers its events before it exits.

PYTEST_DONT_REWRITE (pytest's assertion rewriting leaves the package alone).
"""

from __future__ import annotations

from segment_core.adapters import raise_without_framework, require_framework_version

require_framework_version(adapter="segment_rq", framework="rq", extra="rq")
try:
    from segment_rq import _rq
    from segment_rq._rq import META_KEY, Queue, SimpleWorker, Worker
except ModuleNotFoundError as error:
    raise_without_framework(error, adapter="segment_rq", framework="rq", extra="rq")

__all__ = ["META_KEY", "Queue", "SimpleWorker", "Worker"]

if hasattr(_rq, "SpawnWorker"):  # RQ 2 and later
    SpawnWorker = _rq.SpawnWorker
    __all__ += ["SpawnWorker"]
