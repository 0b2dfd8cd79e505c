"""Sign up, log in, log out; each tells Segment who the visitor is."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import UserMixin, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from blog import login_manager
from blog.db import get_db

bp = Blueprint("auth", __name__)


@dataclass
class User(UserMixin):
    id: int
    username: str
    email: str
    created_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> User:
        return cls(row["id"], row["username"], row["email"], row["created_at"])

    def traits(self) -> dict[str, str]:
        """The user as Segment's identify spec names it."""
        return {"username": self.username, "email": self.email, "createdAt": self.created_at}


def identify_traits(user: User) -> dict[str, str]:
    """The traits of the identify Segment sends when ``user`` logs in."""
    return user.traits()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    row = get_db().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else User.from_row(row)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("signup.html")
    username = request.form.get("username", "").strip()
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    if not username or "@" not in email or len(password) < 8:
        flash("A username, an email address and a password of 8 characters or more, please.")
        return render_template("signup.html"), 400
    db = get_db()
    try:
        with db:
            cursor = db.execute(
                "INSERT INTO users (username, email, password_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    username,
                    email,
                    generate_password_hash(password),
                    datetime.now(timezone.utc).isoformat(timespec="seconds"),
                ),
            )
    except sqlite3.IntegrityError:
        flash(f"The name {username!r} is taken.")
        return render_template("signup.html"), 400
    user = load_user(str(cursor.lastrowid))
    assert user is not None

    analytics = request.analytics
    # alias: what this visitor did anonymously (the ajs_anonymous_id cookie) is theirs.
    analytics.alias(user.get_id())
    analytics.track("Signed Up", {"method": "password"})
    login_user(user)  # Segment sends the identify (SEGMENT_IDENTIFY_TRAITS: its traits)
    return redirect(_next_url())


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("login.html")
    row = (
        get_db()
        .execute("SELECT * FROM users WHERE username = ?", (request.form.get("username", ""),))
        .fetchone()
    )
    if row is None or not check_password_hash(
        row["password_hash"], request.form.get("password", "")
    ):
        flash("Wrong username or password.")
        return render_template("login.html"), 401
    user = User.from_row(row)
    login_user(user)  # Segment sends the identify (SEGMENT_IDENTIFY_TRAITS: its traits)
    return redirect(_next_url())


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    # The page this leads to makes analytics.js forget the user too: base.html calls
    # analytics.reset() with a message of this category.
    flash("You are logged out.", "logged-out")
    return redirect(url_for("posts.index"))


def _next_url() -> str:
    """Where to go after signing in: ``?next=`` when it is a path on this site."""
    target = request.args.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("posts.index")
