"""gunicorn settings for ``gunicorn wsgi:app`` (command-line options win)."""

from __future__ import annotations

import os

# The hook that makes each worker deliver the events it accepted before it exits.
from segment_core.lifecycle import worker_exit  # noqa: F401

bind = ["127.0.0.1:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A graceful stop (SIGTERM) gives requests in progress and the last flush this long.
graceful_timeout = 15
accesslog = "-"
