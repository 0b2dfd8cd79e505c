"""The integrations ``benchmarks/adapters.py`` measures, set up as their documentation shows.

Each served app reads ``$BENCH_VARIANT`` (one of ``VARIANTS``) and
``$BENCH_COLLECTOR``, the loopback receiver's URL with a path of its own (such as
``http://127.0.0.1:PORT/flask-posthog``) so that the receiver counts each server's
deliveries apart. Every integration ships one event per page view:

- ``segment``: this project's adapter, default options.
- ``analytics-python``: Segment's ``segment-analytics-python`` client behind a
  hand-written middleware, the one this project replaces: read the
  ``ajs_anonymous_id`` cookie or make an id and set the cookie, then one ``page``
  call with the page fields, the client's address and user agent.
- ``posthog``: the PostHog client behind the same middleware, one ``$pageview``
  ``capture`` per request.
- ``minimal``: the same middleware with the least client that can do the job, a
  yardstick rather than a product: the message is built as a dict, encoded by
  orjson and appended to a list, with no check of any kind; a thread sends what
  gathered as one gzipped POST every half second, and at exit.
- ``floor``: a yardstick too, the unavoidable work alone, beneath the framework
  (``benchmarks/_floor.py``): the raw WSGI environ or ASGI scope, the id, the
  ``Set-Cookie`` header, ``minimal``'s message and sender.
- ``hooks`` (``instructions.py`` only, not a peer): the framework's hook points
  segment-web's adapter uses, each doing nothing (Django: one more middleware;
  Flask: ``before_request``, ``after_request`` and ``teardown_request``;
  Starlette: a pure ASGI middleware that wraps ``send``): what the framework
  itself charges for hosting an adapter.
- ``opentelemetry``: the framework's OpenTelemetry instrumentation, a
  ``BatchSpanProcessor`` and the OTLP/HTTP exporter: one server span per request.
- ``sentry``: ``sentry_sdk.init`` with ``traces_sample_rate=1.0`` and the default
  integrations: one transaction per request.

Every client is flushed at exit (``atexit``, and for Starlette at lifespan
shutdown too, since uvicorn ends by re-raising SIGTERM, which skips ``atexit``),
so a graceful stop delivers what it holds: the receiver's count then proves
nothing was lost.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

VARIANTS = (
    "bare", "segment", "minimal", "floor", "analytics-python", "opentelemetry", "posthog", "sentry",
)  # fmt: skip
#: Variants that are another one with one change, measured beside it in the same
#: run (``adapters.py --variants``): the view also sends a track event (``-track``),
#: or every request comes from a returning visitor (``-returning``: the load
#: generator sends the ``ajs_anonymous_id`` cookie).
DERIVED = ("segment-track", "segment-returning", "floor-track", "floor-returning")
#: The variants served behind the hand-written middleware.
HAND_WRITTEN = ("minimal", "analytics-python", "posthog")
WRITE_KEY = "bench-write-key"
#: The page every request asks for (the load generator's and the readiness probe's).
PAGE = "/"
COOKIE = "ajs_anonymous_id"
COOKIE_MAX_AGE = 365 * 24 * 3600

#: ``send_page(anonymous_id, user_id, name, request)``: the hand-written middleware's call.
PageSender = Callable[[str, "str | None", "str | None", "PageRequest"], None]


_flushes: list[Callable[[], object]] = []


def on_exit(flush: Callable[[], object]) -> None:
    """Run ``flush`` at exit, and from :func:`flush_all` (lifespan shutdown)."""
    _flushes.append(flush)
    atexit.register(flush)


def flush_all() -> None:
    """Deliver what every client set up here holds."""
    for flush in _flushes:
        flush()


def variant() -> str:
    """The integration served: ``$BENCH_VARIANT``, or the one a ``DERIVED`` variant changes."""
    return base_variant(os.environ.get("BENCH_VARIANT", "bare"))


def base_variant(name: str) -> str:
    """The variant ``name`` changes if it is one of ``DERIVED``, else ``name`` itself."""
    return name.rsplit("-", 1)[0] if name in DERIVED else name


def collector() -> str:
    return os.environ["BENCH_COLLECTOR"]


#: The variants that send a second event per page view with ``adapters.py --track``.
TRACKING = ("segment", "floor")


def track_requested() -> bool:
    """Whether a page view also sends a track event: ``adapters.py --track``, or ``-track``."""
    return os.environ.get("BENCH_TRACK") == "1" or (
        os.environ.get("BENCH_VARIANT", "").endswith("-track")
    )


def tracks() -> bool:
    """Whether the page's view calls ``request.analytics.track()`` (segment-web, ``--track``).

    The ``floor`` sends :func:`track_message` beside its page message instead.
    """
    return variant() == "segment" and track_requested()


#: The event of ``adapters.py --track``.
TRACK_EVENT = "Hello Viewed"


def segment_options() -> dict[str, Any]:
    """Options for segment-web beyond the defaults (``adapters.py --option``), snake_case."""
    options: dict[str, Any] = json.loads(os.environ.get("BENCH_SEGMENT_OPTIONS") or "{}")
    return options


class PageRequest:
    """What the hand-written middlewares read from their framework's request."""

    __slots__ = ("host", "ip", "path", "query", "referrer", "scheme", "user_agent")

    def __init__(
        self,
        *,
        scheme: str,
        host: str,
        path: str,
        query: str,
        referrer: str,
        ip: str | None,
        user_agent: str,
    ) -> None:
        self.scheme, self.host, self.path, self.query = scheme, host, path, query
        self.referrer, self.ip, self.user_agent = referrer, ip, user_agent

    @property
    def url(self) -> str:
        search = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.host}{self.path}{search}"


def visitor(cookie: str | None) -> tuple[str, bool]:
    """The visitor's anonymous id and whether it is new (then the cookie must be set)."""
    if cookie:
        return cookie, False
    return str(uuid.uuid4()), True


def page_sender() -> PageSender:
    """The hand-written middleware's page call for ``$BENCH_VARIANT``."""
    if variant() == "analytics-python":
        return _analytics_python()
    if variant() == "posthog":
        return _posthog()
    if variant() == "minimal":
        return _minimal()
    raise ValueError(f"no hand-written middleware for {variant()!r}")


def _analytics_python() -> PageSender:
    from segment.analytics import Client

    client = Client(WRITE_KEY, host=collector())
    # analytics-python's own atexit hook stops its thread without sending what is
    # queued: an app that wants its events flushes.
    on_exit(client.flush)

    def send(anonymous_id: str, user_id: str | None, name: str | None, page: PageRequest) -> None:
        search = f"?{page.query}" if page.query else ""
        client.page(
            user_id=user_id,
            anonymous_id=anonymous_id,
            name=name,
            properties={
                "path": page.path,
                "url": page.url,
                "search": search,
                "referrer": page.referrer,
            },
            context={"ip": page.ip, "userAgent": page.user_agent},
        )

    return send


def _posthog() -> PageSender:
    from posthog import Posthog

    client = Posthog("bench-project-key", host=collector())
    on_exit(client.flush)  # its own exit hook waits one second at most

    def send(anonymous_id: str, user_id: str | None, name: str | None, page: PageRequest) -> None:
        client.capture(
            "$pageview",
            distinct_id=user_id or anonymous_id,
            properties={
                "$current_url": page.url,
                "$host": page.host,
                "$pathname": page.path,
                "$referrer": page.referrer,
                "$ip": page.ip,
                "$raw_user_agent": page.user_agent,
                "$anon_distinct_id": anonymous_id,
                "title": name,
            },
        )

    return send


def gzip_batcher(name: str) -> Callable[[bytes], None]:
    """The least sender: ``append(encoded_message)``; one gzipped POST every half second.

    No check of any kind, no retry: the yardsticks' delivery (``minimal``, ``floor``).
    Flushed at exit like every client here.
    """
    import gzip
    import http.client
    import threading

    parts = urlsplit(collector())
    pending: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post() -> None:
        with lock:
            batch = pending[:]
            del pending[:]
        if not batch:
            return
        body = gzip.compress(b'{"batch":[' + b",".join(batch) + b"]}", compresslevel=1)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        connection.request(
            "POST",
            f"{parts.path}/v1/batch",
            body,
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        connection.getresponse().read()
        connection.close()

    def run() -> None:
        while not stop.wait(0.5):
            post()

    sender = threading.Thread(target=run, name=f"{name}-sender", daemon=True)
    sender.start()

    def flush() -> None:
        stop.set()
        sender.join(30)  # a POST under way ends before the rest leaves
        post()

    on_exit(flush)

    def append(data: bytes) -> None:
        with lock:
            pending.append(data)

    return append


def page_message(
    anonymous_id: str,
    user_id: str | None,
    name: str | None,
    fields: dict[str, str],
    ip: str | None,
    user_agent: str,
    library: dict[str, str],
) -> bytes:
    """A page call as the yardsticks send it: a dict, encoded by orjson, nothing checked."""
    message = _message("page", anonymous_id, fields, ip, user_agent, library)
    message["properties"] = fields
    if name is not None:
        message["name"] = name
    if user_id is not None:
        message["userId"] = user_id
    return orjson.dumps(message)


def track_message(
    anonymous_id: str,
    fields: dict[str, str],
    ip: str | None,
    user_agent: str,
    library: dict[str, str],
) -> bytes:
    """The ``floor``'s second event with ``--track``: ``TRACK_EVENT`` in the page's context."""
    message = _message("track", anonymous_id, fields, ip, user_agent, library)
    message["event"] = TRACK_EVENT
    return orjson.dumps(message)


def _message(
    kind: str,
    anonymous_id: str,
    fields: dict[str, str],
    ip: str | None,
    user_agent: str,
    library: dict[str, str],
) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": f"{random.getrandbits(128):032x}",
        "timestamp": _timestamp(),
        "anonymousId": anonymous_id,
        "context": {"ip": ip, "userAgent": user_agent, "page": fields, "library": library},
    }


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _minimal() -> PageSender:
    append = gzip_batcher("minimal")
    library = {"name": "minimal", "version": "0"}

    def send(anonymous_id: str, user_id: str | None, name: str | None, page: PageRequest) -> None:
        search = f"?{page.query}" if page.query else ""
        fields = {"path": page.path, "referrer": page.referrer, "search": search, "url": page.url}
        append(page_message(anonymous_id, user_id, name, fields, page.ip, page.user_agent, library))

    return send


def setup_opentelemetry() -> None:
    """A tracer provider exporting every span over OTLP/HTTP in batches."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The provider shuts down at exit (shutdown_on_exit), exporting what it holds.
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    exporter = OTLPSpanExporter(endpoint=collector() + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    on_exit(provider.force_flush)


def setup_sentry() -> None:
    """Sentry with every request traced; the framework's integration is enabled by default."""
    import sentry_sdk

    parts = urlsplit(collector())
    # The DSN's path before the project id prefixes the envelope endpoint.
    dsn = f"http://public@{parts.netloc}{parts.path}/1"
    # shutdown_timeout: the exit hook's flush may take as long as it needs here.
    sentry_sdk.init(dsn=dsn, traces_sample_rate=1.0, shutdown_timeout=10)
    on_exit(lambda: sentry_sdk.flush(timeout=10))


def setup() -> None:
    """The process-wide part of ``$BENCH_VARIANT`` (before the app is built)."""
    if variant() == "opentelemetry":
        setup_opentelemetry()
    elif variant() == "sentry":
        setup_sentry()
