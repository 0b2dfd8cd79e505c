"""Benchmark: requests/s of a hello-world Flask app under gunicorn, with and without Segment.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/flask_overhead.py              # 5 rounds of 2 x 6 s
    .venv/bin/python benchmarks/flask_overhead.py --rounds 3 --seconds 4 --json

It starts a fast loopback receiver (the one of ``benchmarks/core.py``) and two
gunicorn servers on free loopback ports, with the same settings (one sync worker,
one thread): the same app, one with ``SegmentFlask`` sending to the receiver.
Rounds alternate which server is loaded first, with the project's load generator
(``benchmarks/loadgen.py``); the figures are medians over rounds. At the end the
servers are stopped gracefully and every page call the Segment app owes (one per
request it answered) must have reached the receiver. Besides requests/s it prints
the gunicorn worker's CPU time per request (request thread and Segment's sender
thread), steadier than requests/s on a shared machine. ``--option NAME=JSON``
passes an option to ``SegmentFlask`` (``--option flush_at=500``, ``--option
send=false`` to leave delivery out). Bounded: about 65 s with the defaults, two
minutes at most.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._overhead import (  # noqa: E402
    PAGE,
    PROBE,
    WRITE_KEY,
    gunicorn,
    measure,
    parse_args,
    report,
)

#: gunicorn serves ``f"{FLASK_APP}({variant!r})"``.
FLASK_APP = "benchmarks.flask_overhead:make_app"


# -- the app gunicorn serves (``benchmarks.flask_overhead:make_app('segment')``) --------


def make_app(variant: str = "plain") -> Any:
    """The hello-world app; ``"segment"`` adds the extension, sending to ``$BENCH_COLLECTOR``."""
    from flask import Flask

    app = Flask("hello")

    @app.get(PAGE)
    def hello() -> str:
        return "Hello, World!"

    @app.get(PROBE)
    def healthz() -> str:
        return "ok"

    if variant == "segment":
        from segment_flask import SegmentFlask

        app.config.update(SEGMENT_WRITE_KEY=WRITE_KEY, SEGMENT_HOST=os.environ["BENCH_COLLECTOR"])
        SegmentFlask(app, **json.loads(os.environ.get("BENCH_SEGMENT_OPTIONS") or "{}"))
    return app


def main() -> None:
    args = parse_args(
        __doc__, "an option for SegmentFlask, e.g. --option flush_at=100 (repeatable)"
    )
    report(measure(args, partial(gunicorn, FLASK_APP)), args.json)


if __name__ == "__main__":
    main()
