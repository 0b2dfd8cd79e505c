"""Posts (a static list) and their comments (in SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from blog.db import get_db

bp = Blueprint("posts", __name__)

MAX_COMMENT_LENGTH = 2000


@dataclass(frozen=True)
class Post:
    slug: str
    title: str
    summary: str
    body: str


POSTS = (
    Post(
        "events-at-shutdown",
        "Where do analytics events go when a worker stops?",
        "A batching client must deliver what it accepted before the process exits.",
        "Batching makes analytics cheap, until the process stops with a batch still in "
        "memory. A graceful shutdown should flush it, with a deadline.",
    ),
    Post(
        "one-visitor-two-sides",
        "One visitor, seen by the server and the browser",
        "The ajs_anonymous_id cookie joins server-side and browser-side events.",
        "analytics.js keeps the visitor's anonymous id in a cookie. A server that reads "
        "the same cookie, or sets it first, sends events that join the browser's.",
    ),
)
_BY_SLUG = {post.slug: post for post in POSTS}


def _post_or_404(slug: str) -> Post:
    post = _BY_SLUG.get(slug)
    if post is None:
        abort(404)
    return post


@bp.get("/")
def index() -> str:
    return render_template("index.html", posts=POSTS)


@bp.get("/posts/<slug>")
def detail(slug: str) -> str:
    post = _post_or_404(slug)
    comments = (
        get_db()
        .execute(
            "SELECT comments.body, comments.created_at, users.username FROM comments "
            "JOIN users ON users.id = comments.user_id WHERE post_slug = ? ORDER BY comments.id",
            (slug,),
        )
        .fetchall()
    )
    return render_template("post.html", post=post, comments=comments)


@bp.post("/posts/<slug>/comments")
@login_required
def comment(slug: str) -> Response:
    post = _post_or_404(slug)
    body = request.form.get("body", "").strip()
    if not body or len(body) > MAX_COMMENT_LENGTH:
        flash(f"A comment has 1 to {MAX_COMMENT_LENGTH} characters.")
        return redirect(url_for("posts.detail", slug=slug))
    db = get_db()
    with db:
        cursor = db.execute(
            "INSERT INTO comments (post_slug, user_id, body, created_at) VALUES (?, ?, ?, ?)",
            (slug, current_user.id, body, datetime.now(timezone.utc).isoformat()),
        )
    request.analytics.track(
        "Comment Posted",
        {
            "comment_id": str(cursor.lastrowid),
            "post_id": post.slug,
            "post_title": post.title,
            "length": len(body),
        },
    )
    return redirect(url_for("posts.detail", slug=slug, _anchor="comments"))
