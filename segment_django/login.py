"""Logins and logouts in a request (``user_logged_in`` and ``user_logged_out`` receivers).

Connected by the app's ``ready()``. Django's ``login()`` sends its signal with
the request: the visitor's anonymous id is joined to the user in one
``identify``, with traits from the ``IDENTIFY_TRAITS`` hook (none without one).
``IDENTIFY_ON_LOGIN`` turns it off, or decides at each login (a hook). A logout
ends the user for the rest of the request (the calls of ``user_logged_out``'s
receivers are still the user's), whatever a ``USER_ID`` hook would say: an async
view's calls, made in the event loop, cannot ask it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import dispatcher

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
    """``user_logged_out`` receiver: the request's later calls name no user. Django
    sends the signal while the user is still logged in: the calls of its receivers
    (a "Signed Out" event) carry the user, whichever were connected first."""
    try:
        tracker = getattr(request, "_segment_tracker", None)
        if isinstance(tracker, RequestTracker):
            tracker.logout_announced(_announcing_logout)
    except Exception:
        logger.exception("segment: could not end the user at a logout")


def _announcing_logout() -> bool:
    """Whether this thread runs the receivers of ``user_logged_out``: a frame of
    Django's dispatcher sending that signal is on its stack (``send()``, or the
    thread in which ``asend()`` runs the plain receivers), or the task running is an
    ``async def`` receiver of it (``asend()`` runs each as a task of its own)."""
    frame = sys._getframe(1)
    while frame is not None:
        if (
            frame.f_code.co_filename == _DISPATCHER
            and frame.f_locals.get("self") is user_logged_out
        ):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return _in_an_async_receiver()


def _in_an_async_receiver() -> bool:
    """Whether the asyncio task running on this thread runs a receiver of
    ``user_logged_out`` (the coroutine of one of its ``async def`` receivers)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop on this thread
        return False
    code = getattr(task.get_coro(), "cr_code", None) if task is not None else None
    if code is None:
        return False
    for entry in list(user_logged_out.receivers):
        receiver = entry[1]
        if isinstance(receiver, weakref.ReferenceType):  # a weak one: its function
            receiver = receiver()
        function = getattr(receiver, "__func__", receiver)  # a bound method's
        if getattr(function, "__code__", None) is code:
            return True
    return False


_DISPATCHER = dispatcher.__file__
