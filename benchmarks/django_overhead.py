"""Benchmark: requests/s of a hello-world Django site under gunicorn, with and without Segment.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/django_overhead.py              # 5 rounds of 2 x 6 s
    .venv/bin/python benchmarks/django_overhead.py --rounds 3 --seconds 4 --json

The measurement of ``benchmarks/flask_overhead.py`` (in ``_overhead.py``) on a Django
site: a fast loopback receiver (the one of ``benchmarks/core.py``) and two gunicorn
servers on free loopback ports, with the same settings (one sync worker, one
thread), serving the same site (``benchmarks/django_bench_app.py``: session and
authentication middleware, an in-memory SQLite database the page never touches),
one with ``segment_django`` and its ``SegmentMiddleware`` sending to the receiver.
Every request is a new visitor (the load generator keeps no cookies): the
middleware reads the (anonymous) user, sets the anonymous-id cookie and makes a
page call. Rounds alternate which server is loaded first, with the project's load
generator (``benchmarks/loadgen.py``); the figures are medians over rounds. At the
end the servers are stopped gracefully (SIGTERM: gunicorn's worker runs ``atexit``,
which delivers) and every page call the Segment site owes (one per request it
answered) must have reached the receiver. Besides requests/s it prints the gunicorn
worker's CPU time per request (request thread and Segment's sender thread), steadier
than requests/s on a shared machine. ``--option NAME=JSON`` sets a key of
``settings.SEGMENT`` (upper-cased: ``--option flush_at=500``, ``--option send=false``
to leave delivery out). Bounded: about 65 s with the defaults, two minutes at most.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._overhead import gunicorn, measure, parse_args, report  # noqa: E402

#: gunicorn serves ``f"{DJANGO_APP}({variant!r})"``, ``variant`` being "plain" or "segment".
DJANGO_APP = "benchmarks.django_bench_app:make_app"


def main() -> None:
    args = parse_args(__doc__, "a key of settings.SEGMENT, e.g. --option flush_at=100 (repeatable)")
    args.option = {name.upper(): value for name, value in args.option.items()}
    report(measure(args, partial(gunicorn, DJANGO_APP)), args.json)


if __name__ == "__main__":
    main()
