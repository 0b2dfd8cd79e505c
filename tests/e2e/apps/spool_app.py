"""A process that tracks events, then idles like a server until SIGTERM.

``python -m tests.e2e.apps.spool_app COUNT TAG`` tracks COUNT "Spooled" events
(properties ``n``, ``tag`` and ``pid``), prints ``tracked <accepted>``, and waits.
On SIGTERM it shuts its client down and prints the client's stats as JSON. The
options come from the environment (``SEGMENT_SPOOL_DIR`` and the others).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from segment_core import Client
from tests.e2e.apps.options import client_options


def main() -> None:
    count, tag = int(sys.argv[1]), sys.argv[2]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    client = Client(**client_options())
    accepted = 0
    for n in range(count):
        properties = {"n": n, "tag": tag, "pid": os.getpid()}
        accepted += client.track(f"user-{n % 100}", "Spooled", properties)[0]
    print(f"tracked {accepted}", flush=True)
    while not stop.wait(0.2):
        pass
    delivered = client.shutdown()
    print(json.dumps({"delivered": delivered, **client.stats()}), flush=True)


if __name__ == "__main__":
    main()
