"""The collector's ASGI application: Segment's `/v1/*` routes, the query API, the page.

Routes:

* `POST /v1/batch`, `/v1/import`, `/v1/track`, `/v1/identify`, `/v1/page`,
  `/v1/screen`, `/v1/group`, `/v1/alias`: accept what Segment's HTTP API accepts;
  also analytics.js's one-letter routes (`/v1/t`, `/v1/p`, `/v1/i`, `/v1/g`,
  `/v1/a`, `/v1/s`), with CORS so a page of another origin can post.
* `GET /collector/summary`: counts of good, bad and duplicate messages.
* `GET /collector/events`: stored events, oldest first; filters `type`, `event`,
  `userId`, `anonymousId`, `status` (good|bad); `after=<seq>` (only events stored
  after that cursor), `limit` (default 1000) or `last=<n>` (the newest n, still
  oldest first; no more than `limit` when it is given too); both up to 100,000.
  Answers `{"events": [...], "cursor": <seq of the last one>, "run": <this run's name>}`.
* `/v1/*` answers a page of another origin by its name, with credentials allowed,
  and a preflight allows the headers it asks for (analytics.js can add any). So
  does a path the collector has no route for, so that a page posting to `/t` (an
  `apiHost` without `/v1`) can read the 404, which names the route it meant.
* `GET /collector/events/<messageId>`: one event, 404 when unknown.
* `POST /collector/reset`: forget events, counts and pending faults.
* `POST|GET|DELETE /collector/faults`: queue, list or clear fault plans (see faults.py).
* `GET /collector/stream`: server-sent events for the page (see stream.py).
* `GET /`: the web page.

Every route first passes the checks of `guard.py`: the `Host` must name the
collector, a configured write key is needed everywhere, and the control routes
refuse requests from pages of other origins (unless `allow_remote_control`: then
they answer those pages with CORS, as `/v1/*` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator, MutableMapping
from importlib import resources
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

from segment_core.collector._asgi import (
    DRAIN_LIMIT,
    JSONBytesResponse,
    apply_fault,
    error_response,
    read_body,
)
from segment_core.collector.faults import FaultPlanError, FaultQueue, parse_plans
from segment_core.collector.forward import Forwarder
from segment_core.collector.guard import (
    allowed_host_name,
    basic_user,
    host_allowed,
    is_cross_origin,
    key_matches,
)
from segment_core.collector.ingest import (
    Limits,
    RequestError,
    build_records,
    decode_body,
    endpoint_name,
    parse_json,
    utc_now_iso,
    write_key_from,
)
from segment_core.collector.oauth import OAuthServer
from segment_core.collector.store import MAX_QUERY_LIMIT, EventQuery, EventStore
from segment_core.collector.stream import Notifier, parse_count, stream_endpoint
from segment_core.hosts import check_write_key

__all__ = ["CollectorApp", "create_app"]

_FILTERS = {"type": "type", "event": "event", "userId": "user_id", "anonymousId": "anonymous_id"}
_QUERY_PARAMS = frozenset({*_FILTERS, "status", "limit", "after", "last"})
_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}
_CONTROL_PATHS = frozenset({"/collector/reset", "/collector/faults"})
# The scope key of the store's generation as a `/v1/*` request arrived.
_ARRIVED_IN_GENERATION = "segment_collector.generation"
# The live page: never framed by a page of another origin, where a click on its Reset
# would come from the collector's own origin.
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class _AnyTextConvertor(PathConvertor):
    """A path parameter holding any text, line feeds too (`path`'s `.*` stops at one):
    a messageId is any string a client sent."""

    regex = r"[\s\S]*"


register_url_convertor("segment_collector_any_text", _AnyTextConvertor())


def create_app(
    *,
    write_key: str | None = None,
    db: str | None = None,
    forward: str | None = None,
    limits: Limits | None = None,
    allowed_hosts: Collection[str] = (),
    allow_remote_control: bool = False,
    oauth: OAuthServer | None = None,
    max_events: int | None = None,
    max_bytes: int | None = None,
) -> CollectorApp:
    """Build the collector ASGI app.

    `write_key`: when set, every request needs it (HTTP Basic user name, or
    `writeKey` in the body of `/v1/*`); others get 401. An empty one is none.
    `db`: SQLite file to store events in; in memory when None.
    `forward`: base URL of a Segment-compatible API to relay good batches to.
    `allowed_hosts`: host names accepted in `Host` besides the local ones (`"*"`: any).
    `allow_remote_control`: let pages of other origins reset the collector and plan
    faults (with CORS, so a page's `fetch` reads the answers).
    `oauth`: require OAuth access tokens on `/v1/*` and serve `/token` (see oauth.py).
    `max_events`: events to hold before the oldest are forgotten; None: 100,000 in
    memory, no limit with `db`; 0: no limit.
    `max_bytes`: bytes of stored messages to hold before the oldest are forgotten;
    None: 256 MiB in memory, no limit with `db`; 0: no limit.
    A `write_key` no client could send (a `:`, spaces) raises `ValueError`.
    """
    check_write_key(write_key)
    return CollectorApp(
        write_key=write_key,
        db=db,
        forward=forward,
        limits=limits or Limits(),
        allowed_hosts=allowed_hosts,
        allow_remote_control=allow_remote_control,
        oauth=oauth,
        max_events=max_events,
        max_bytes=max_bytes,
    )


class CollectorApp:
    """ASGI app; faults are applied here, outside Starlette, so they can drop connections."""

    def __init__(
        self,
        *,
        write_key: str | None,
        db: str | None,
        forward: str | None,
        limits: Limits,
        allowed_hosts: Collection[str] = (),
        allow_remote_control: bool = False,
        oauth: OAuthServer | None = None,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        # An empty key ("--write-key $KEY" with KEY unset) is no key: none could match.
        self.write_key = write_key or None
        self.oauth = oauth
        self.allowed_hosts = _checked_allowed_hosts(allowed_hosts)
        self.allow_remote_control = allow_remote_control
        self.limits = limits
        self.store = EventStore(db, max_events=max_events, max_bytes=max_bytes)
        self.faults = FaultQueue()
        self.notifier = Notifier()
        self.forwarder = Forwarder(forward) if forward else None
        self.requests: Counter[str] = Counter()
        #: The requests whose body is still arriving, ended when the collector stops.
        self._uploads: set[asyncio.Task[Any]] = set()
        self._uploads_lock = threading.Lock()
        self._stopping = False
        page = resources.files("segment_core.collector").joinpath("static/index.html")
        self._page = page.read_bytes()
        self._starlette = Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/v1/{endpoint}", self._ingest, methods=["POST"]),
                Route("/collector/summary", self._summary, methods=["GET"]),
                Route("/collector/events", self._events, methods=["GET"]),
                Route(
                    "/collector/events/{message_id:segment_collector_any_text}",
                    self._event,
                    methods=["GET"],
                ),
                Route("/collector/reset", self._reset, methods=["POST"]),
                Route("/collector/faults", self._faults, methods=["GET", "POST", "DELETE"]),
                Route(
                    "/collector/stream",
                    stream_endpoint(self.store, self.notifier, self.summary),
                    methods=["GET"],
                ),
                *(oauth.routes() if oauth is not None else []),
            ],
            exception_handlers={HTTPException: _http_error, Exception: _server_error},
            lifespan=self._lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            remote_control = self._is_remote_control(scope)
            refusal = self._refusal(scope)
            if refusal is not None:
                if scope["path"].startswith("/v1/") or remote_control or not self._has_route(scope):
                    send = _with_cors(send, scope)  # so analytics.js can read why
                await refusal(scope, receive, send)
                return
            if remote_control:
                # A page of another origin drives the collector (a test harness).
                if scope["method"] == "OPTIONS":
                    await _cors_preflight(scope, send, _CONTROL_METHODS)
                    return
                send = _with_cors(send, scope)
            elif not scope["path"].startswith("/v1/") and not self._has_route(scope):
                # analytics.js posting beside /v1: the page must see the 404, not a
                # CORS failure. Nothing there is readable but the error.
                if scope["method"] == "OPTIONS":
                    await _cors_preflight(scope, send, _INGEST_METHODS)
                    return
                send = _with_cors(send, scope)
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            # analytics.js in a page of another origin (the app) posts here.
            if scope["method"] == "OPTIONS":
                await _cors_preflight(scope, send, _INGEST_METHODS)
                return
            # Before any wait: a reset forgets what arrived before it, even if held.
            scope[_ARRIVED_IN_GENERATION] = self.store.generation
            receive = self._until_stop(receive)
            faults, clears = self.faults, self.faults.clears
            # A sender's POST takes a planned fault; a probe's GET (a 405) does not.
            fault = faults.take() if scope["method"] == "POST" else None
            if fault is not None:
                # The unwrapped send: a "close" fault reaches the server's transport by it;
                # an injected status must be readable by a page (analytics.js retries on it).
                fault_send = send if fault.close else _with_cors(send, scope)
                keep = self.limits.max_request_bytes
                try:
                    after_fault = await apply_fault(
                        fault,
                        scope,
                        receive,
                        fault_send,
                        keep=keep,
                        planned=lambda: faults.clears == clears,
                    )
                except _UploadCut:
                    await _stopping()(scope, receive, _with_cors(send, scope))
                    return
                if after_fault is None:
                    self.requests["faulted"] += 1
                    self.notifier.notify()
                    return
                receive = after_fault
            send = _with_cors(send, scope)
        await self._starlette(scope, receive, send)

    def _is_remote_control(self, scope: Scope) -> bool:
        """Whether pages of other origins may use this control route (`allow_remote_control`)."""
        return self.allow_remote_control and scope["path"] in _CONTROL_PATHS

    def _has_route(self, scope: Scope) -> bool:
        """Whether a route answers this path (for some method)."""
        return any(route.matches(scope)[0] is not Match.NONE for route in self._starlette.routes)

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer to a request the guard refuses (see guard.py), or None."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not host_allowed(host, scope.get("server"), self.allowed_hosts):
            return error_response(
                400,
                "host_not_allowed",
                f"Host {host!r:.80} is not this collector's name; to accept it, start "
                "the collector with --allowed-host NAME (or allowed_hosts=[NAME] in Python)",
            )
        path = scope["path"]
        if (
            self.write_key is not None
            and not path.startswith("/v1/")  # the ingest route reads the body's key too
            and not (self.oauth is not None and path == "/token")  # proves itself by assertion
            # A browser's preflight never carries credentials; it changes nothing.
            and not (scope["method"] == "OPTIONS" and self._is_remote_control(scope))
            and not key_matches(basic_user(headers.get("authorization")), self.write_key)
        ):
            return error_response(
                401,
                "unauthorized",
                "this collector needs its write key: HTTP Basic, the key as user name",
                headers={"WWW-Authenticate": 'Basic realm="segment-collector"'},
            )
        if (
            path in _CONTROL_PATHS
            and scope["method"] not in ("GET", "HEAD")
            and not self.allow_remote_control
            and is_cross_origin(headers, host)
        ):
            return error_response(
                403,
                "cross_origin",
                "the control routes refuse requests from pages of other origins; "
                "start the collector with --allow-remote-control to allow them",
            )
        return None

    def summary(self) -> dict[str, Any]:
        """Store counts plus request counts and the number of pending fault plans."""
        counts = self.store.summary()
        counts["requests"] = {
            name: self.requests[name] for name in ("accepted", "rejected", "faulted")
        }
        counts["pending_faults"] = len(self.faults.pending())
        if self.forwarder is not None:
            counts["forwarded"] = dict(self.forwarder.stats)
        if self.oauth is not None:
            counts["oauth"] = self.oauth.summary()
        return counts

    def begin_shutdown(self) -> None:
        """End open event streams, delays and uploads in progress so the server can
        stop; safe from any thread."""
        self.faults.clear()
        self.notifier.close()
        self._stopping = True
        with self._uploads_lock:
            uploads = list(self._uploads)
        for task in uploads:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing runs
                task.get_loop().call_soon_threadsafe(self._end_upload, task)

    def _end_upload(self, task: asyncio.Task[Any]) -> None:
        # On the task's loop: a request whose body is still arriving (not one past it).
        if task in self._uploads:
            task.cancel()

    def _until_stop(self, receive: Receive) -> Receive:
        """``receive``, which raises :class:`_UploadCut` when the collector stops while
        it waits for more of the body (a client sending slowly would otherwise hold the
        stop up, then be cut off with an error); what has arrived is read as usual."""

        async def receive_until_stop() -> Message:
            task = asyncio.current_task()
            if task is None:
                return await receive()
            with self._uploads_lock:
                self._uploads.add(task)
            try:
                if self._stopping:  # ended if it has to wait, after the stop began
                    asyncio.get_running_loop().call_soon(self._end_upload, task)
                return await receive()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                uncancel = getattr(task, "uncancel", None)  # Python 3.11 and later
                if uncancel is not None:
                    uncancel()  # ours, and done with: the request is answered
                raise _UploadCut from None
            finally:
                with self._uploads_lock:
                    self._uploads.discard(task)

        return receive_until_stop

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
        self.store.close()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.close()

    async def _index(self, request: Request) -> Response:
        return HTMLResponse(self._page, headers=_PAGE_HEADERS)

    async def _ingest(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        if endpoint_name(endpoint) is None:
            return error_response(404, "not_found", f"there is no route /v1/{endpoint}")
        received_at = utc_now_iso()
        try:
            if self.oauth is not None:
                self.oauth.check_bearer(request.headers.get("authorization"))
            raw = await self._read_body(request)
            body = decode_body(raw, request.headers.get("content-encoding", ""), self.limits)
            payload = parse_json(body)
            write_key, source = write_key_from(request.headers.get("authorization"), payload)
            self._authorize(write_key)
            records = build_records(
                payload,
                endpoint,
                write_key=write_key,
                write_key_source=source,
                received_at=received_at,
                limits=self.limits,
            )
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except _UploadCut:
            return _stopping()
        except RequestError as error:
            if request.scope[_ARRIVED_IN_GENERATION] == self.store.generation:
                self.requests["rejected"] += 1
                self.notifier.notify()
            return error_response(error.status, error.code, error.message)
        # A request that arrived before a reset (held by a delay fault) is answered
        # as it would have been, but neither stored nor counted: the reset forgot
        # everything before it, and a test's events never show up in the next one's.
        if self.store.add(records, generation=request.scope[_ARRIVED_IN_GENERATION]):
            self.requests["accepted"] += 1
            self.notifier.notify()
        if self.forwarder is not None:
            self.forwarder.submit(
                [r.message for r in records if r.relayable],
                write_key,
                # Every record of a request holds its sentAt: the relay keeps the sender's clock.
                sent_at=records[0].sent_at if records else None,
                received_at=received_at,
            )
        return JSONBytesResponse({"success": True})

    async def _read_body(self, request: Request) -> bytes:
        limit = self.limits.max_request_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > DRAIN_LIMIT:
                break  # keep reading a huge body no longer; the client gets its 400
        if size > limit:
            raise RequestError(
                400,
                "request_too_large",
                f"the body is {size} bytes or more; the limit is {limit}",
            )
        return b"".join(chunks)

    def _authorize(self, write_key: str | None) -> None:
        if self.write_key is None:
            return
        if write_key is None:
            raise RequestError(
                401,
                "unauthorized",
                "a write key is required (HTTP Basic username or writeKey in the body)",
            )
        if not key_matches(write_key, self.write_key):
            raise RequestError(401, "unauthorized", "the write key is not valid")

    async def _summary(self, request: Request) -> Response:
        return JSONBytesResponse(self.summary())

    async def _events(self, request: Request) -> Response:
        try:
            query = _parse_event_query(request)
        except ValueError as error:
            return error_response(400, "invalid_query", str(error))
        # Written as the store is read, on a thread of its own (a plain iterator):
        # however many events it holds, the answer neither holds up the events
        # arriving meanwhile nor needs their whole size in memory at once.
        return StreamingResponse(
            _events_answer(self.store.query_json(query), query.after, self.notifier.run),
            media_type="application/json",
        )

    async def _event(self, request: Request) -> Response:
        message_id = request.path_params["message_id"]
        event = self.store.get(message_id)
        if event is None:
            return error_response(404, "not_found", f"no event with messageId {message_id!r}")
        return JSONBytesResponse(event)

    async def _reset(self, request: Request) -> Response:
        self.store.reset()
        self.faults.clear()
        self.requests.clear()
        self.notifier.notify(reset=True)
        return JSONBytesResponse({"success": True})

    async def _faults(self, request: Request) -> Response:
        if request.method == "POST":
            body = await read_body(request.receive, _MAX_FAULTS_BYTES)
            if body is None:
                return error_response(400, "invalid_json", "the client went away before its body")
            if len(body) > _MAX_FAULTS_BYTES:
                return error_response(
                    400, "request_too_large", f"the body is over {_MAX_FAULTS_BYTES} bytes"
                )
            try:
                self.faults.add(parse_plans(orjson.loads(body)))
            except orjson.JSONDecodeError as error:
                return error_response(400, "invalid_json", f"the body is not valid JSON: {error}")
            except FaultPlanError as error:
                return error_response(400, "invalid_fault_plan", str(error))
        elif request.method == "DELETE":
            self.faults.clear()
        return JSONBytesResponse({"pending": self.faults.pending()})


#: The largest list of fault plans taken: a few plans are a few hundred bytes.
_MAX_FAULTS_BYTES = 64 * 1024


def _checked_allowed_hosts(allowed_hosts: Collection[str]) -> frozenset[str]:
    if isinstance(allowed_hosts, str):  # its letters would each be a name
        raise ValueError(f"allowed_hosts takes a list of host names, got {allowed_hosts!r}")
    try:
        return frozenset(allowed_host_name(name) for name in allowed_hosts)
    except ValueError as error:
        raise ValueError(f"allowed_hosts {error}") from None


class _UploadCut(Exception):
    """The collector began to stop while a request's body was still arriving."""


def _stopping() -> Response:
    return error_response(
        503,
        "stopping",
        "the collector is stopping; the request was not stored",
        headers={"Connection": "close"},
    )


def _events_answer(
    events: Iterator[tuple[list[bytes], int]], cursor: int, run: str
) -> Iterator[bytes]:
    """`{"events": [...], "cursor": <seq of the last one>, "run": <run>}`, a piece at a
    time; the run names this collector's cursors (a page streams from `<run>-<cursor>`)."""
    yield b'{"events":['
    separator = b""
    for pieces, last_seq in events:
        yield separator + b",".join(pieces)
        separator = b","
        cursor = last_seq
    yield b'],"cursor":' + orjson.dumps(cursor) + b',"run":' + orjson.dumps(run) + b"}"


def _parse_event_query(request: Request) -> EventQuery:
    params = request.query_params
    unknown = sorted(set(params) - _QUERY_PARAMS)
    if unknown:
        raise ValueError(
            f"unknown filter(s): {', '.join(unknown)}; known: {', '.join(sorted(_QUERY_PARAMS))}"
        )
    # One value each: a second would be a filter silently left out.
    for name in params:
        count = len(params.getlist(name))
        if count > 1:
            raise ValueError(f"{name} is given {count} times; each filter takes one value")
    # A filter left empty (?type=&event=Signed+Up, as a form or a script fills it in)
    # is no filter.
    given = {name: params[name] for name in params if params[name] != ""}
    filters: dict[str, Any] = {
        attribute: given[name] for name, attribute in _FILTERS.items() if name in given
    }
    status = given.get("status")
    if status is not None:
        status = status.lower()  # as the page's terms are read
        if status not in ("good", "bad"):
            raise ValueError("status must be good or bad")
    limit = _int_param(given.get("limit"), "limit", minimum=1)
    last = _int_param(given.get("last"), "last", minimum=1)
    after = _int_param(given.get("after"), "after", minimum=0)
    return EventQuery(
        **filters,
        status=status,
        after=after or 0,
        limit=min(limit, MAX_QUERY_LIMIT) if limit is not None else None,
        last=min(last, MAX_QUERY_LIMIT) if last is not None else None,
    )


def _int_param(value: str | None, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    return parse_count(value, name, minimum=minimum)


# analytics.js adds X-Retry-Count to every retry: allowed whether asked for or not.
_ALWAYS_ALLOWED_HEADERS = ("authorization", "content-type", "content-encoding", "x-retry-count")
# What a header name is made of (RFC 9110's token): anything else is not echoed.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_ALLOW_ANY_ORIGIN = [(b"access-control-allow-origin", b"*")]
_INGEST_METHODS = b"POST, OPTIONS"
_CONTROL_METHODS = b"GET, POST, DELETE, OPTIONS"
_CORS_PREFLIGHT_HEADERS = [
    (b"access-control-max-age", b"600"),
    (b"vary", b"Origin, Access-Control-Request-Headers"),
]
_CORS_RESPONSE_HEADERS = [
    (b"vary", b"Origin"),
    # Without them a page cannot read when an injected 429 or 503 says to retry.
    (b"access-control-expose-headers", b"Retry-After, X-RateLimit-Reset"),
]


def _request_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _allowed_origin(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The page's own origin, with credentials: analytics.js may send them
    (`credentials: "include"`), and a browser refuses `*` then."""
    origin = _request_header(scope, b"origin")
    if origin is None:
        return _ALLOW_ANY_ORIGIN
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-credentials", b"true"),
    ]


def _allowed_headers(requested: bytes | None) -> bytes:
    """The headers the browser asks to send (analytics.js's `deliveryStrategy.config.headers`
    can add any), when every one is a header name; otherwise only the usual ones."""
    names = list(_ALWAYS_ALLOWED_HEADERS)
    if requested is not None:
        asked = [name.strip(" \t") for name in requested.decode("latin-1").lower().split(",")]
        if all(_HEADER_NAME.fullmatch(name) for name in asked if name):
            names.extend(name for name in asked if name and name not in names)
    return ", ".join(names).encode("ascii")


async def _cors_preflight(scope: Scope, send: Send, methods: bytes) -> None:
    requested = _request_header(scope, b"access-control-request-headers")
    headers = [
        *_allowed_origin(scope),
        (b"access-control-allow-methods", methods),
        (b"access-control-allow-headers", _allowed_headers(requested)),
        *_CORS_PREFLIGHT_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, scope: Scope) -> Send:
    cors_headers = [*_allowed_origin(scope), *_CORS_RESPONSE_HEADERS]

    async def send_with_cors(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *cors_headers]}
        await send(message)

    return send_with_cors


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    detail = str(exc.detail)
    endpoint = request.url.path.rpartition("/")[2]
    if exc.status_code == 404 and endpoint_name(endpoint) is not None:
        # An analytics.js apiHost (browser_api_host) without its /v1, a client's host
        # with a /v1 of its own, to which the client adds another, or a path of
        # another service's: the route that takes it, where the collector is served.
        root = str(request.scope.get("root_path") or "").rstrip("/")
        detail = f"there is no route {request.url.path}; events go to {root}/v1/{endpoint}"
    return error_response(exc.status_code, code, detail, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal_error", "the collector failed; see its log")
