"""The Django app: checks, settings changes, and the process's client built at start-up.

``ready()`` builds the client from ``settings.SEGMENT`` on the main thread, so
that ``segment_core.track(...)`` and ``segment_core.analytics()`` work in
management commands, the shell, signal receivers and job workers, and so that
the process delivers what it holds when it exits (``atexit``, and a SIGTERM
handler where nothing else handles SIGTERM, such as ``runserver --noreload``).
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class SegmentConfig(AppConfig):
    name = "segment_django"
    verbose_name = "Segment"

    def ready(self) -> None:
        from segment_core.adapters import keep_loggers_on

        # LOGGING, applied just before, turned off the library's loggers if they
        # existed (imported first): on again.
        keep_loggers_on()
        from django.core import checks

        from segment_django.checks import check_deployment, check_settings

        checks.register(check_settings)
        checks.register(check_deployment, checks.Tags.security, deploy=True)
        connect_receivers()


def connect_receivers() -> None:
    """Follow setting changes, build the client, and take up logins and logouts
    (again: once, by their ``dispatch_uid``)."""
    from django.contrib.auth.signals import user_logged_in, user_logged_out
    from django.core.signals import setting_changed

    from segment_django import conf
    from segment_django.login import end_user_on_logout, identify_on_login, login_begins

    setting_changed.connect(conf.on_setting_changed, dispatch_uid="segment_django.conf")
    # Settings no client can be built from are logged (once) and give one that
    # discards; the system checks say what is wrong (manage.py check), and the
    # middleware refuses to start with it.
    conf.get_client()
    # The identify after the receivers connected before it (the app's own may fill
    # what the USER_ID and IDENTIFY_TRAITS hooks read; update_last_login, last_login);
    # before every receiver, a note that the visitor is logging in: the calls those
    # make (a post_save receiver's) keep its anonymous id.
    user_logged_in.connect(identify_on_login, dispatch_uid="segment_django.login")
    user_logged_in.connect(login_begins, dispatch_uid="segment_django.login_begins")
    run_first(user_logged_in, "segment_django.login_begins")
    user_logged_out.connect(end_user_on_logout, dispatch_uid="segment_django.logout")


def run_first(signal: Any, dispatch_uid: str) -> None:
    """Move the receiver of ``signal`` connected with ``dispatch_uid`` to the front.

    Django calls a signal's receivers in the order they were connected, and offers
    no other: its list of receivers (entries whose first item is the lookup key,
    ``(dispatch_uid, sender's id)``) is reordered under its lock, and the per-sender
    cache cleared. A Django that keeps them otherwise is left as it is.
    """
    try:
        with signal.lock:
            receivers = signal.receivers
            at = next(i for i, entry in enumerate(receivers) if entry[0][0] == dispatch_uid)
            if at:
                receivers.insert(0, receivers.pop(at))
                signal.sender_receivers_cache.clear()
    except Exception:
        return
