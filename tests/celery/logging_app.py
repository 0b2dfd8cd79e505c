"""The test app with its logging set up as Celery's documentation shows: a
``setup_logging`` receiver that calls ``dictConfig``, which turns off every logger
that exists then, the library's among them."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from celery import signals

from tests.celery.app import _redis, app
from tests.jobs import LOGGER_STATES

__all__ = ["app"]


@signals.setup_logging.connect
def configure_logging(**kw: Any) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": ["console"], "level": "INFO"},
            "loggers": {"celery": {}},  # Celery's own stay on (its "ready." line)
        }
    )


@app.task
def record_logger_state() -> None:
    """Whether the library's warnings (events not delivered) would be seen here."""
    disabled = logging.getLogger("segment.core").disabled
    _redis.rpush(LOGGER_STATES, "off" if disabled else "on")
