"""A framework-free WSGI app that sends through the module-level calls (``segment_core.track``).

The default client is built by the first call, from ``SEGMENT_WRITE_KEY``,
``SEGMENT_HOST`` and ``SEGMENT_SPOOL_DIR``: under a server of concurrent requests,
by whichever request comes first, while the others wait for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import segment_core
from tests.e2e.apps.options import item_properties


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/health":  # no call: the first item request builds the client
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    prefix, _, number = path.rpartition("/")
    if prefix != "/item" or not number.isdigit():
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    visitor = environ.get("HTTP_X_VISITOR", "visitor")
    segment_core.page(anonymous_id=visitor, name="item", properties={"path": path})
    properties = item_properties(int(number))
    segment_core.track(anonymous_id=visitor, event="Item Viewed", properties=properties)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
