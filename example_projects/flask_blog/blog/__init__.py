"""A small blog: sign up, log in, comment. ``create_app()`` builds it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_login import LoginManager

from segment_flask import SegmentFlask

segment = SegmentFlask()
login_manager = LoginManager()
login_manager.login_view = "auth.login"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app, configured from the environment (``config`` overrides, for tests)."""
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "dev-only-not-secret"),
        DATABASE=os.environ.get(
            "BLOG_DATABASE", str(Path(tempfile.gettempdir()) / "flask_blog.sqlite3")
        ),
        # Segment: every option as SEGMENT_<NAME>. None falls back to the
        # SEGMENT_WRITE_KEY / SEGMENT_HOST variables; with no write key nothing is sent.
        SEGMENT_WRITE_KEY=os.environ.get("SEGMENT_WRITE_KEY"),
        SEGMENT_HOST=os.environ.get("SEGMENT_HOST"),
        SEGMENT_IDENTIFY_TRAITS="blog.auth.identify_traits",
        # analytics.js in the pages ({{ segment_snippet() }} in base.html): the website
        # source's own write key (no key: no snippet), where the library comes from
        # (None: Segment's CDN), where it sends, and which side sends page views.
        SEGMENT_BROWSER_WRITE_KEY=os.environ.get("SEGMENT_BROWSER_WRITE_KEY") or None,
        SEGMENT_SNIPPET_SRC=os.environ.get("SEGMENT_SNIPPET_SRC") or None,
        SEGMENT_BROWSER_CDN=os.environ.get("SEGMENT_BROWSER_CDN") or None,
        SEGMENT_BROWSER_API_HOST=os.environ.get("SEGMENT_BROWSER_API_HOST") or None,
        SEGMENT_PAGE_SOURCE=os.environ.get("SEGMENT_PAGE_SOURCE") or None,
    )
    if config:
        app.config.update(config)

    from blog import auth, db, posts

    db.init_app(app)
    login_manager.init_app(app)
    segment.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(posts.bp)

    @app.get("/healthz")
    def healthz() -> tuple[str, int, dict[str, str]]:
        # Health checks are excluded from page calls by default.
        return "ok", 200, {"Content-Type": "text/plain"}

    return app
