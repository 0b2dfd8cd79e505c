"""``SegmentFlask``: the extension object, usable with one app or an app factory."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from flask import Flask, current_app, got_request_exception, has_app_context

import segment_core
import segment_core.scope
from segment_core.adapters import keep_loggers_on, offer_as_default
from segment_core.client import Client
from segment_core.config import options_over
from segment_core.testing import divert, divert_in_tests, divert_when
from segment_core.web import WebOptions
from segment_flask._hooks import (
    RequestHooks,
    end_user_on_logout,
    identify_on_login,
    request_analytics,
    unbind_requests_left_bound,
)
from segment_flask._request import flask_login
from segment_flask._snippet import segment_snippet
from segment_flask._state import SegmentState, check_keywords, load_state

__all__ = ["EXTENSION_NAME", "SegmentFlask", "get_state"]

EXTENSION_NAME = "segment"


class SegmentFlask:
    """Segment for a Flask app: a page call per request, ``request.analytics`` in views.

    ::

        app = Flask(__name__)
        app.config["SEGMENT_WRITE_KEY"] = "..."
        segment = SegmentFlask(app)

        @app.post("/signup")
        def signup():
            request.analytics.track("Signed Up", {"plan": "free"})
            ...

    or, with an app factory, ``segment = SegmentFlask()`` at module level and
    ``segment.init_app(app)`` in the factory. Options are the ``SEGMENT_*``
    config keys; keyword arguments given here or to :meth:`init_app` override
    them (``client=`` shares an existing :class:`~segment_core.Client`). Without a
    write key of its own, the app's client takes the module-level settings
    (``segment_core.write_key``, ...) as they are when ``init_app`` runs, for the
    options the app leaves unset. The extension keeps no app: each app's client and
    options live in ``app.extensions["segment"]`` (a :class:`SegmentState`).

    With ``TESTING = True`` the app's own client sends nothing: its events go to
    ``segment_core.testing.outbox``, unless ``SEGMENT_SEND_IN_TESTS = True``.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        check_keywords(options)
        self._defaults = options
        if app is not None:
            self._init_app(app, {}, stacklevel=3)

    def init_app(self, app: Flask, **options: Any) -> None:
        """Set Segment up for ``app``, once; ``options`` override the config keys."""
        check_keywords(options)
        self._init_app(app, options, stacklevel=3)

    def _init_app(self, app: Flask, options: dict[str, Any], *, stacklevel: int) -> None:
        if hasattr(app, "_get_current_object"):  # flask.current_app: the app it stands for
            app = app._get_current_object()
        if not isinstance(app, Flask):  # a Celery app, a blueprint, the app's name
            raise TypeError(
                f"SegmentFlask needs the flask.Flask app, got {type(app).__module__}."
                f"{type(app).__qualname__}"
            )
        if EXTENSION_NAME in app.extensions:
            raise RuntimeError(
                f"Segment is already set up on app {app.name!r}: call init_app once per app."
            )
        if getattr(app, "_got_first_request", False):  # Flask refuses a setup from then on
            raise RuntimeError(
                f"app {app.name!r} has already handled a request: set Segment up "
                "(SegmentFlask(app) or init_app) as the app is made, before it serves one"
            )
        # A dictConfig made since the library was imported (as Flask's docs make
        # it, before the app) turned its loggers off: on again.
        keep_loggers_on()
        state = load_state(
            app.config,
            options_over(self._defaults, options),
            static_url_path=app.static_url_path if app.has_static_folder else None,
            app_name=app.name,
            stacklevel=stacklevel,
        )
        # With TESTING, the app's events go to segment_core.testing.outbox: checked
        # now and before each request, so TESTING set after init_app (as test
        # fixtures often do) counts too.
        divert_when_testing = None
        if state.owns_client and state.options.send_in_tests:
            # Sent for real in tests, a capture's too (it records them).
            divert_in_tests(state.client, send=True, running=lambda: True)
        elif state.owns_client:
            if app.testing:
                divert(state.client)
            else:
                divert_when_testing = state.client
                # Also for what is sent outside a request (a CLI command, a call
                # in a test): asked as each message comes until the first request
                # (TESTING may be set after a message sent as the app was made).
                config = app.config
                divert_when(state.client, lambda: True if config.get("TESTING") else None)
        app.extensions[EXTENSION_NAME] = state
        hooks = RequestHooks(app, state, divert_when_testing=divert_when_testing)
        # The first of the app's url_value_preprocessors, which Flask runs before its
        # before_request functions: those and the preprocessors registered before
        # init_app find request.analytics, so does the handler of an error a
        # preprocessor raises, and the route's values are read before one takes them
        # out. The last of its after_request functions (Flask runs them in reverse),
        # so that the response it completes is the one sent, whichever the app's own
        # hooks returned. The last of its teardown functions (also run in reverse),
        # so that the app's own, registered before init_app or after, run bound.
        # Flask stops at a teardown function that raises, yet ends the request's
        # app context all the same: a teardown_appcontext function unbinds the
        # request then. (Not a wrapper of app.wsgi_app: segment_asgi recognises a
        # Flask app mounted in an ASGI app by that bound method.)
        app.url_value_preprocessors.setdefault(None, []).insert(0, hooks.start_request)
        app.after_request_funcs.setdefault(None, []).insert(0, hooks.after_request)
        app.teardown_request_funcs.setdefault(None, []).insert(0, hooks.teardown_request)
        app.teardown_appcontext_funcs.append(unbind_requests_left_bound)
        # Held by its method's weak reference: it goes with the app.
        got_request_exception.connect(hooks.start_for_error, app)
        if flask_login is not None:
            flask_login.user_logged_in.connect(identify_on_login, app)
            flask_login.user_logged_out.connect(end_user_on_logout, app)
        app.add_template_global(segment_snippet, "segment_snippet")
        from segment_flask.cli import segment_cli

        app.cli.add_command(segment_cli)
        # The first app's client also serves segment_core.track(...) outside requests.
        offer_as_default(state.client)
        if state.owns_client:
            # An app dropped (an app factory's, made per test) takes its client's
            # sender thread with it, once what the client holds is delivered.
            weakref.finalize(app, _close_client_of_dropped_app, state.client).atexit = False

    @property
    def client(self) -> Client:
        """The current app's client."""
        return get_state().client

    @property
    def options(self) -> WebOptions:
        """The current app's web options."""
        return get_state().options


def _close_client_of_dropped_app(client: Client) -> None:
    """Shut down, on a thread of its own, the client of an app that is gone, unless
    it serves segment_core's module-level calls (the default client)."""
    if client is not segment_core.default_client:
        threading.Thread(target=client.shutdown, name="segment-close", daemon=True).start()


def get_state(app: Flask | None = None) -> SegmentState:
    """``app``'s (default: the current app's) Segment state; RuntimeError if not set up."""
    target = current_app if app is None else app
    state = target.extensions.get(EXTENSION_NAME)
    if not isinstance(state, SegmentState):
        raise RuntimeError(
            f"Segment is not set up on app {target.name!r}: call SegmentFlask(app) "
            "or segment.init_app(app) first."
        )
    return state


def _current_app_client() -> Client | None:
    """The client of the app whose context this is (for ``segment_core.track()``)."""
    if not has_app_context():
        return None
    state = current_app.extensions.get(EXTENSION_NAME)
    return state.client if isinstance(state, SegmentState) else None


segment_core._client_finders.append(_current_app_client)
segment_core.scope._analytics_finders.append(request_analytics)
