"""Machine instructions of each piece of a page view, one at a time, counted by valgrind.

Run from the repository root, with valgrind installed (``apt-get install valgrind``)::

    .venv/bin/python benchmarks/pieces.py                  # every piece
    .venv/bin/python benchmarks/pieces.py tracker finish   # some
    BENCH_PYTHONPATH=/tmp/old .venv/bin/python benchmarks/pieces.py   # another checkout

Each piece is called in a loop in a fresh interpreter under ``valgrind
--tool=callgrind``, 0 and 2,000 times after a warm-up; the difference divided by
2,000 is its cost per call. The request is the one of ``request_path.py`` (a new
visitor, ``GET /``), with the neutral :class:`RequestInfo` an adapter builds:

- ``tracker``: ``RequestTracker(...)`` for it (identity, context), and four of
  its parts: ``exclusions`` (the path against ``exclude_paths``), ``allowed``
  (bots, privacy signals, consent), ``anonid`` (a new visitor's id, a UUID as
  analytics.js makes), ``context`` (the request's context: ip, user agent,
  locale, page fields with secrets redacted, campaign);
- ``cookie``: ``cookie_to_set()``;
- ``finish``: the automatic page call: the tracker's decision (status, content
  type, exclusions, the page name), then ``visitor``, ``build`` and ``accept``:
- ``visitor``: ``request.analytics`` deciding the call's ids and context (the
  anonymous-id rule, the context handed over as checked);
- ``build``: the client's message factory building the page message (ids,
  timestamp, the context merged with the client's defaults, the Spec's checks);
- ``accept``: the client taking it (``encode``, the size limit, the buffer, the
  returned message in analytics-python's shape); ``build`` and ``accept`` each
  copy their input first (a dict of five strings, a message: about 2k);
- ``encode``: the part of ``accept`` that encodes the message (the walk for
  nesting depth and NaN, then orjson);
- ``atrack``: ``request.analytics.track("Hello Viewed")``;
- ``ctrack``: ``client.track("u1", "Hello Viewed")``;
- ``pagecaller``: ``client.page(...)`` with that request's context;
- ``deliver``: the same, delivered: the sender thread's batch, gzip and POST to
  the loopback receiver of ``core.py`` included.

Only ``deliver`` lets messages leave; the other pieces measure the caller's side.

The ``floor`` yardstick's pieces (``benchmarks/_floor.py``), the same work without
any rule, for comparison: ``floorid`` (its id: 128 random bits in hex),
``floorcookie`` (its ``Set-Cookie`` line, appended to a header list),
``floorpage`` (its page call: the page fields read from a WSGI environ, the
message built, encoded by orjson and appended to a list).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIECES = (
    "tracker",
    "exclusions",
    "allowed",
    "anonid",
    "context",
    "cookie",
    "finish",
    "visitor",
    "build",
    "encode",
    "accept",
    "atrack",
    "ctrack",
    "pagecaller",
    "deliver",
    "floorid",
    "floorcookie",
    "floorpage",
)
CALLS = 2000
VISITOR = "3b241101-e2bb-4255-8caf-4136c566a962"


def child(piece: str, calls: int, collector: str) -> None:
    """In the measured interpreter: warm up, call ``piece`` ``calls`` times, leave."""
    import segment_core
    from benchmarks import _floor, request_path
    from segment_core.encoding import encode
    from segment_core.web import RequestInfo, RequestTracker
    from segment_core.web._context import request_context
    from segment_core.web._identity import new_anonymous_id
    from segment_core.web._options import WebOptions
    from segment_core.web._page import is_excluded, tracking_allowed

    client = segment_core.Client(
        "bench-key", host=collector, max_queue_size=10**6, flush_at=2500, flush_interval=10**6
    )
    worker: Any = client._worker
    if piece != "deliver":
        worker._threads = [None]  # no sender is started: nothing leaves
    options = WebOptions()
    headers = request_path.HEADERS
    request = RequestInfo(
        method="GET", scheme="http", host="127.0.0.1:8000", path="/", query_string="",
        headers=headers, cookies={}, client_addr="127.0.0.1",
    )  # fmt: skip
    tracker = RequestTracker(client, options, request)
    tracker.cookie_to_set()
    context = dict(tracker.analytics.context)
    properties = {"path": "/", "referrer": "", "search": "", "url": "http://127.0.0.1:8000/"}

    analytics = tracker.analytics
    # The automatic page call's own arguments, as _page_call hands them on.
    user_id, anonymous_id, checked = analytics._visitor("page", {})
    named = {**properties, "name": "hello"}
    factory = client._factory
    message = factory.page(user_id, None, "hello", dict(named), checked, None, anonymous_id)

    def finish() -> None:
        tracker._finished = False
        analytics.page_message = None
        analytics._tracker = tracker  # as in a request: finish() lets go of it
        tracker._context_private = True  # as in a request: nothing else has seen it
        tracker.finish(200, None, content_type="text/html; charset=utf-8")

    def cookie() -> None:
        tracker._cookie_decided = False
        tracker.cookie_to_set()

    def page() -> None:
        client.page(anonymous_id=VISITOR, name="hello", properties=properties, context=context)

    # The floor's middleware, its batcher replaced by a list: nothing leaves.
    floor: Any = object.__new__(_floor.FloorWSGI)
    appended: list[bytes] = []
    floor.append = appended.append
    floor.track = False  # a page view's own call only
    cookie_prefix, cookie_attributes = _floor._COOKIE_PREFIX, _floor._COOKIE_ATTRIBUTES
    environ = request_path.wsgi_environ()

    calls_of: dict[str, Callable[[], object]] = {
        "tracker": lambda: RequestTracker(client, options, request),
        "exclusions": lambda: is_excluded(request.path, options),
        "allowed": lambda: tracking_allowed(request, options),
        "anonid": new_anonymous_id,
        "context": lambda: request_context(request, options, scheme="http", host=request.host),
        "cookie": cookie,
        "finish": finish,
        "visitor": lambda: analytics._visitor("page", {}),
        "build": lambda: factory.page(
            user_id, None, "hello", dict(named), checked, None, anonymous_id
        ),
        "encode": lambda: encode(message),
        "accept": lambda: client._accept(dict(message)),
        "atrack": lambda: tracker.analytics.track("Hello Viewed"),
        "ctrack": lambda: client.track("u1", "Hello Viewed"),
        "pagecaller": page,
        "deliver": page,
        "floorid": _floor._new_id,
        "floorcookie": lambda: [("Set-Cookie", cookie_prefix + VISITOR + cookie_attributes)],
        "floorpage": lambda: floor._page(environ, VISITOR),
    }
    call = calls_of[piece]
    for _ in range(200):
        call()
    if piece == "deliver":
        client.flush(60)
    else:
        worker._buffer.clear()
        appended.clear()
    for _ in range(calls):
        call()
    if piece == "deliver" and not client.flush(60):
        sys.exit("the messages were not all delivered")
    os._exit(0)


def count(piece: str, calls: int, collector: str) -> int:
    paths = (os.environ.get("BENCH_PYTHONPATH"), str(ROOT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--child", piece, str(calls), collector,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        sys.exit(f"{piece}: {done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        child(args[1], int(args[2]), args[3])
        return
    unknown = [a for a in args if a not in PIECES]
    if unknown:
        sys.exit(f"unknown piece(s) {', '.join(unknown)}; the pieces: {', '.join(PIECES)}")
    if sys.path[0] != str(ROOT):
        sys.path.insert(0, str(ROOT))
    from benchmarks.core import start_receiver

    receiver, port, _ = start_receiver()
    collector = f"http://127.0.0.1:{port}/pieces"
    try:
        for piece in args or PIECES:
            per_call = (count(piece, CALLS, collector) - count(piece, 0, collector)) // CALLS
            print(f"{piece:<12} {per_call:>8,} instructions per call", flush=True)
    finally:
        receiver.kill()
        receiver.wait()


if __name__ == "__main__":
    main()
