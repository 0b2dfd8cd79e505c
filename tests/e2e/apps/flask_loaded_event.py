"""``flask_app``'s app, which also tracks an event as it is loaded: in uWSGI, in the
master that forks the workers (the app is loaded there unless uWSGI runs with
``lazy-apps``)."""

from __future__ import annotations

import os

from segment_core import Client
from tests.e2e.apps.flask_app import app
from tests.e2e.apps.options import client_options

__all__ = ["LOADED_EVENT", "app"]

LOADED_EVENT = "App Loaded"

Client(**client_options()).track("loader", LOADED_EVENT, {"pid": os.getpid()})
