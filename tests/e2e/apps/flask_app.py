"""A Flask app with ``SegmentFlask``: an automatic page call plus one track per item view."""

from __future__ import annotations

import os
import threading

from flask import Flask, request

from segment_core.scope import analytics, start_thread
from segment_flask import SegmentFlask
from tests.e2e.apps.options import client_options, item_properties

app = Flask(__name__)
app.config.update({"SEGMENT_" + name.upper(): value for name, value in client_options().items()})
SegmentFlask(app)


@app.get("/health")
def health() -> str:
    return str(os.getpid())


@app.get("/item/<int:n>")
def item(n: int) -> str:
    request.analytics.track("Item Viewed", item_properties(n))
    return str(os.getpid())


#: What the view's background work tracks once done.
BACKGROUND_EVENT = "Export Finished"


@app.get("/export/<int:n>")
def export(n: int) -> str:
    """Answers at once; its background work (an export) ends ``?seconds=`` (1) later."""
    seconds = float(request.args.get("seconds", 1.0))

    def work() -> None:
        threading.Event().wait(seconds)  # the export's own work
        analytics().track(BACKGROUND_EVENT, {"n": n, "pid": os.getpid()})

    start_thread(work)
    return str(os.getpid())
