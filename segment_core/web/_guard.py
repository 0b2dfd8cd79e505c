"""One guard around every user hook: a bug in user code is logged, the request goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["call_hook", "hook_raised", "logger"]

logger = logging.getLogger("segment.core.web")

T = TypeVar("T")


def call_hook(
    name: str, hook: Callable[..., Any], *args: Any, default: T, early: bool = False
) -> Any | T:
    """Call ``hook(*args)``; if it raises, log the traceback and return ``default``.

    ``name`` is the option the hook came from, so the log says which setting to fix.
    The caller checks the type of what a successful call returned. ``early``: asked
    before the app has run, where the hook may need what a middleware inside the
    adapter's has yet to set up (a session); the caller asks again once the app has
    run, so a failure now is logged at DEBUG only.
    """
    try:
        return hook(*args)
    except Exception:
        hook_raised(name, default, early=early)
        return default


def hook_raised(name: str, default: object, *, early: bool = False, again: bool = False) -> None:
    """Log that the ``name`` hook raised, from the ``except`` block that caught it.

    At ERROR with the traceback; at DEBUG when ``early`` (see :func:`call_hook`), or
    when ``again``: it raised before in the same request, and its traceback was
    logged then.
    """
    if early:
        logger.debug(
            "segment: the %s hook raised before the app ran; asked again once it has",
            name,
            exc_info=True,
        )
    elif again:
        logger.debug("segment: the %s hook raised again; going on with %r", name, default)
    else:
        logger.exception("segment: the %s hook raised; going on with %r", name, default)
