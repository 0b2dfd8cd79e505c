"""The Flask test app, where ``GET /item/<n>?linger=1`` keeps its worker in the request.

The response goes out at once, but closing it (which ends the request, for the
server) waits until the file named by ``E2E_RELEASE_FILE`` exists: the client has
its whole answer while the worker is still busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Response, request

from tests.e2e.apps.flask_app import app

__all__ = ["app"]

RELEASE_TIMEOUT = 60.0


@app.after_request
def linger(response: Response) -> Response:
    if "linger" in request.args:
        response.call_on_close(_wait_for_release)
    return response


def _wait_for_release() -> None:
    release = Path(os.environ["E2E_RELEASE_FILE"])
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
