"""WSGI entry point: ``gunicorn wsgi:app`` (settings in ``gunicorn.conf.py``)."""

from __future__ import annotations

from blog import create_app

app = create_app()
