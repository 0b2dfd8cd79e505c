"""A small blog: sign up, log in, comment. ``create_app()`` builds it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app
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
        # analytics.js in the browser (optional). Not SEGMENT_* keys: those are the
        # extension's, and it warns about names it does not know.
        ANALYTICS_JS_URL=os.environ.get("SEGMENT_JS_URL", ""),
        ANALYTICS_JS_CONFIG=json.loads(os.environ.get("SEGMENT_JS_CONFIG") or "{}"),
    )
    if config:
        app.config.update(config)

    from blog import auth, db, posts

    db.init_app(app)
    login_manager.init_app(app)
    segment.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(posts.bp)
    app.context_processor(analytics_js)

    @app.get("/healthz")
    def healthz() -> tuple[str, int, dict[str, str]]:
        # Health checks are excluded from page calls by default.
        return "ok", 200, {"Content-Type": "text/plain"}

    return app


def analytics_js() -> dict[str, Any]:
    """What ``base.html`` needs to load analytics.js (nothing when no URL is set)."""
    url = current_app.config["ANALYTICS_JS_URL"]
    if not url:
        return {"segment_js_url": ""}
    # The browser uses the server's write key unless SEGMENT_JS_CONFIG names its own.
    write_key = segment.client.config.write_key or ""
    config = {"writeKey": write_key, **current_app.config["ANALYTICS_JS_CONFIG"]}
    return {"segment_js_url": url, "segment_js_config": config}
