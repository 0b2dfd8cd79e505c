"""A Flask app with ``SegmentFlask``: an automatic page call plus one track per item view."""

from __future__ import annotations

import os

from flask import Flask, request

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
