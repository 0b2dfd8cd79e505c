"""``plain_wsgi``'s app, imported only as the first request comes (as a view module a
lazily loaded URLconf imports): the library is first imported on a request's thread.

``/item/<n>?linger=1`` is answered at once, but closing it (which ends the request,
for the server) waits until the file named by ``E2E_RELEASE_FILE`` exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

RELEASE_TIMEOUT = 60.0


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    from tests.e2e.apps.plain_wsgi import app as loaded  # the library with it

    answer = loaded(environ, start_response)
    return _Lingering(answer) if "linger" in environ.get("QUERY_STRING", "") else answer


class _Lingering:
    def __init__(self, answer: Iterable[bytes]) -> None:
        self._answer = answer

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._answer)

    def close(self) -> None:
        release = Path(os.environ["E2E_RELEASE_FILE"])
        deadline = time.monotonic() + RELEASE_TIMEOUT
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
