"""The hello-world Flask app of ``benchmarks/adapters.py``.

gunicorn serves ``benchmarks.flask_bench_app:make_app()``; ``$BENCH_VARIANT``
says which integration it carries (see ``benchmarks/_peers.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request

from benchmarks import _peers

__all__ = ["make_app"]


def make_app() -> Flask:
    """The app for ``$BENCH_VARIANT``, sending to ``$BENCH_COLLECTOR``."""
    variant = _peers.variant()
    _peers.setup()
    app = Flask("hello")

    track = _peers.tracks()

    @app.get(_peers.PAGE)
    def hello() -> str:
        if track:
            request.analytics.track(_peers.TRACK_EVENT)  # type: ignore[attr-defined]
        return "Hello, World!"

    if variant == "segment":
        from segment_flask import SegmentFlask

        app.config.update(SEGMENT_WRITE_KEY=_peers.WRITE_KEY, SEGMENT_HOST=_peers.collector())
        SegmentFlask(app, **_peers.segment_options())
    elif variant in _peers.HAND_WRITTEN:
        _add_page_hooks(app, _peers.page_sender())
    elif variant == "floor":
        from benchmarks._floor import FloorWSGI

        app.wsgi_app = FloorWSGI(app.wsgi_app)  # type: ignore[method-assign]
    elif variant == "hooks":
        _add_hook_points(app)
    elif variant == "opentelemetry":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(app)
    return app


def _add_page_hooks(app: Flask, send_page: _peers.PageSender) -> None:
    """The hand-written middleware: Flask's request hooks."""

    @app.before_request
    def read_visitor() -> None:
        g.anonymous_id, g.new_visitor = _peers.visitor(request.cookies.get(_peers.COOKIE))

    @app.after_request
    def page_call(response: Response) -> Response:
        if request.method == "GET" and response.status_code == 200:
            environ: dict[str, Any] = request.environ
            page = _peers.PageRequest(
                scheme=request.scheme,
                host=request.host,
                path=request.path,
                query=environ.get("QUERY_STRING", ""),
                referrer=request.referrer or "",
                ip=request.remote_addr,
                user_agent=environ.get("HTTP_USER_AGENT", ""),
            )
            send_page(g.anonymous_id, None, request.endpoint, page)
        if g.new_visitor:
            response.set_cookie(
                _peers.COOKIE, g.anonymous_id, max_age=_peers.COOKIE_MAX_AGE, samesite="Lax"
            )
        return response


class _HookPoints:
    """The ``hooks`` variant: the three hooks segment-web registers, doing nothing."""

    def start_request(self, endpoint: str | None, values: Any) -> None:
        return None

    def after_request(self, response: Response) -> Response:
        return response

    def teardown_request(self, error: BaseException | None = None) -> None:
        return None


def _add_hook_points(app: Flask) -> None:
    hooks = _HookPoints()
    app.url_value_preprocessor(hooks.start_request)
    app.after_request(hooks.after_request)
    app.teardown_request(hooks.teardown_request)
