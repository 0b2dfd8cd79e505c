"""Logins and logouts in a request (``user_logged_in`` and ``user_logged_out`` receivers).

Connected by the app's ``ready()``. Django's ``login()`` sends its signal with
the request: the visitor's anonymous id is joined to the user in one
``identify``, with traits from the ``IDENTIFY_TRAITS`` hook (none without one).
``IDENTIFY_ON_LOGIN`` turns it off, or decides at each login (a hook). A logout
ends the user for the rest of the request once ``logout()`` is over (its
receivers' calls are still the user's), whatever a ``USER_ID`` hook would say:
an async view's calls, made in the event loop, cannot ask it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from segment_core.web import RequestTracker

__all__ = ["end_user_on_logout", "identify_on_login", "login_begins"]

logger = logging.getLogger("segment.django")


def identify_on_login(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: one identify for the request's visitor."""
    try:
        tracker = getattr(request, "_segment_tracker", None)
        if not isinstance(tracker, RequestTracker) or user is None:
            return  # a login outside SegmentMiddleware (a test client's login())
        pk = getattr(user, "pk", None)
        if pk is None:
            return
        # With a USER_ID hook, identify_login() asks it for the user's id: in async
        # mode too, where alogin() sends the signal to this receiver in a thread.
        tracker.identify_login(str(pk), user)
    except Exception:
        logger.exception("segment: the automatic identify of a login failed")


def login_begins(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """``user_logged_in`` receiver run before the others (Django's update_last_login,
    whose save a post_save receiver may track): the visitor logging in keeps its
    anonymous id on the calls they make, before the login's identify."""
    try:
        tracker = getattr(request, "_segment_tracker", None)
        if isinstance(tracker, RequestTracker):
            tracker.login_begins()
    except Exception:  # the login goes on
        logger.exception("segment: could not note a login under way")


def end_user_on_logout(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: the request's calls name no user once Django's
    ``logout()`` is over. It sends the signal while the user is still logged in:
    the calls its receivers make (a "Signed Out" event) carry the user, whichever
    were connected first. Over once Django replaced ``request.user`` or flushed the
    session (else when the response starts)."""
    try:
        tracker = getattr(request, "_segment_tracker", None)
        if isinstance(tracker, RequestTracker):
            tracker.user_leaving(_logout_over(tracker.request.native))
    except Exception:
        logger.exception("segment: could not end the user at a logout")


def _logout_over(request: Any) -> Callable[[], bool]:
    """Whether the ``logout()`` of ``request`` under way is over: the request's user
    object (read from its attributes, so no session is loaded) or its session key
    is no longer the one it had when the logout began."""
    attributes = request.__dict__
    user = attributes.get("user")
    session = attributes.get("session")
    key = getattr(session, "session_key", None)

    def over() -> bool:
        if attributes.get("user") is not user:
            return True
        return session is not None and getattr(session, "session_key", None) != key

    return over
