"""A WSGI app on gevent's or eventlet's own server, which runs until SIGTERM.

``python -m tests.e2e.apps.green_server gevent|eventlet PORT [APP]`` monkey-patches
the standard library first, as these servers require, then serves ``APP`` (the
Flask app by default). Nothing handles SIGTERM but what segment_core chains.
"""

from __future__ import annotations

import sys


def main() -> None:
    library, port = sys.argv[1], int(sys.argv[2])
    target = sys.argv[3] if len(sys.argv) > 3 else "tests.e2e.apps.flask_app:app"
    if library == "gevent":
        from gevent import monkey

        monkey.patch_all()
    else:
        import eventlet

        eventlet.monkey_patch()
    import importlib

    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name)
    if library == "gevent":
        from gevent.pywsgi import WSGIServer

        WSGIServer(("127.0.0.1", port), app, log=None).serve_forever()
    else:
        import eventlet.wsgi

        eventlet.wsgi.server(eventlet.listen(("127.0.0.1", port)), app, log_output=False)


if __name__ == "__main__":
    main()
