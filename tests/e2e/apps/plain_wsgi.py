"""A framework-free WSGI app that uses ``segment_core.Client`` directly."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from segment_core import Client
from tests.e2e.apps.options import client_options, item_properties

client = Client(**client_options())


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    prefix, _, number = path.rpartition("/")
    if prefix != "/item" or not number.isdigit():
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    visitor = environ.get("HTTP_X_VISITOR", "visitor")
    client.page(anonymous_id=visitor, name="item", properties={"path": path})
    client.track(anonymous_id=visitor, event="Item Viewed", properties=item_properties(int(number)))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
