"""The middleware at the ASGI level: scopes, state, options, the double-wrap guard."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import pytest
import starlette.middleware
from mypy import api as mypy_api
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

import segment_core
from segment_asgi import SegmentMiddleware
from segment_asgi.middleware import SCOPE_MARK, UNTRACKED_WEBSOCKET
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.config import option_names as client_option_names
from segment_core.scope import Analytics, current
from segment_core.web import option_names as web_option_names
from tests.asgi.asgi import Message, call, header, http_scope
from tests.asgi.conftest import Sent
from tests.web.raw_bytes import (
    RAW_QUERY,
    RAW_REFERRER,
    RAW_USER_AGENT,
    assert_read_as_the_framework_reads_them,
)

# Older Starlette (0.37, the lowest supported) types Middleware(cls, ...) and
# add_middleware(cls, ...) with ``type[_MiddlewareClass[P]]``, a protocol whose
# ``__init__`` mypy does not match: it infers nothing for ``P``, so no keyword of any
# middleware is type-checked there. Newer Starlette types them with a callable
# ``_MiddlewareFactory[P]``, which mypy checks against SegmentMiddleware's signature.
STARLETTE_TYPES_MIDDLEWARE_OPTIONS = not hasattr(starlette.middleware, "_MiddlewareClass")


def hello(request: Request) -> Response:
    return HTMLResponse("hello")


HELLO = Starlette(routes=[Route("/", hello, name="hello")])


async def test_other_scope_types_pass_through_untouched(client: Client) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        pass

    middleware = SegmentMiddleware(app, client=client)
    for kind in ("websocket", "custom"):
        scope: dict[str, Any] = {"type": kind, "path": "/ws", "headers": []}
        await middleware(scope, receive, send)
        assert seen.pop() == (scope, receive, send)
        # A WebSocket is only marked as passed on untracked, for segment_asgi.analytics's error.
        marked = {UNTRACKED_WEBSOCKET: True} if kind == "websocket" else {}
        assert scope == {"type": kind, "path": "/ws", "headers": [], **marked}


async def test_state_is_created_and_the_contextvar_bound(client: Client, sent: Sent) -> None:
    inside: list[Analytics | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        inside.append(current())
        await HTMLResponse("ok")(scope, receive, send)

    scope = http_scope()
    await call(SegmentMiddleware(app, client=client), scope)
    assert isinstance(scope["state"]["analytics"], Analytics)
    assert inside == [scope["state"]["analytics"]]
    assert current() is None  # reset after the request
    [page] = sent()
    assert page["name"] == "/"  # no router: the path stands for the route
    assert page["context"]["ip"] == "203.0.113.9"


async def test_existing_state_is_kept(client: Client) -> None:
    scope = http_scope(state={"db": "pool"})
    await call(SegmentMiddleware(HELLO, client=client), scope)
    assert scope["state"]["db"] == "pool" and "analytics" in scope["state"]


async def test_wrapping_twice_sends_one_page_call(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    inner_client = Client("inner-key", host="http://127.0.0.1:9")
    app = SegmentMiddleware(SegmentMiddleware(HELLO, client=inner_client), client=client)
    scope = http_scope()
    with caplog.at_level(logging.WARNING, logger="segment.asgi"):
        [start, _] = await call(app, scope)
        await call(app, http_scope())
    assert len(header(start, b"set-cookie")) == 1
    assert scope[SCOPE_MARK] is True
    assert [m["name"] for m in sent()] == ["hello", "hello"]  # the outer one's client
    # The inner one stands aside, and says so once: its own options do not apply.
    [warning] = [r for r in caplog.records if "another SegmentMiddleware" in r.getMessage()]
    assert "configure the outer one" in warning.getMessage()


async def test_root_path_and_host_from_the_server(client: Client, sent: Sent) -> None:
    scope = http_scope(
        "/caf\u00e9/",
        root_path="/app",
        scheme="https",
        headers=[(b"user-agent", b"Mozilla/5.0")],
        server=("shop.example", 8443),
        query_string=b"utm_medium=email",
    )
    await call(SegmentMiddleware(HTMLResponse("ok"), client=client), scope)
    [page] = sent()
    assert page["properties"]["path"] == "/app/caf%C3%A9/"
    assert page["properties"]["url"] == "https://shop.example:8443/app/caf%C3%A9/?utm_medium=email"


async def test_raw_bytes_in_the_query_and_referrer_are_escaped(client: Client, sent: Sent) -> None:
    headers = [
        *(pair for pair in http_scope()["headers"] if pair[0] != b"user-agent"),
        (b"referer", RAW_REFERRER),
        (b"user-agent", RAW_USER_AGENT),
    ]
    scope = http_scope("/", query_string=RAW_QUERY, headers=headers)
    await call(SegmentMiddleware(HELLO, client=client), scope)
    [page] = sent()
    assert_read_as_the_framework_reads_them(page, "http://shop.example/")


async def test_a_fragment_left_in_the_query_still_makes_a_page_call(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    # Any client can write "#" into the request line, and uvicorn's h11 server
    # passes it on in the query string: it is no part of the page's URL.
    scope = http_scope(query_string=b"q=1#top")
    await call(SegmentMiddleware(HELLO, client=client), scope)
    [page] = sent()
    assert page["properties"]["url"] == "http://shop.example/?q=1"
    assert page["context"]["page"]["search"] == "?q=1"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "host",
    [b"shop.example#x", b"shop example", b"shop.example/a", b'a"<b>', b"a@b", b"a:b:c", b"a\\b"],
)
async def test_a_host_header_no_url_can_hold_makes_no_page_call(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture, host: bytes
) -> None:
    scope = http_scope(headers=[(b"host", host), (b"user-agent", b"Mozilla/5.0")])
    [start, _] = await call(SegmentMiddleware(HELLO, client=client), scope)
    assert start["status"] == 200
    assert sent() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "host", ["web_app:8000", "[::1]:8443", "xn--bcher-kva.example", "Shop.Example.", "10.0.0.7"]
)
async def test_every_host_a_url_can_hold_is_kept(client: Client, sent: Sent, host: str) -> None:
    scope = http_scope(headers=[(b"host", host.encode()), (b"user-agent", b"Mozilla/5.0")])
    await call(SegmentMiddleware(HELLO, client=client), scope)
    [page] = sent()
    assert page["properties"]["url"] == f"http://{host.lower()}/"


async def test_repeated_headers_are_joined(client: Client, sent: Sent) -> None:
    scope = http_scope(
        headers=[
            (b"host", b"shop.example"),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"x-forwarded-for", b"198.51.100.4"),
            (b"cookie", b"a=1"),
            (b"cookie", b"ajs_user_id=u-3"),
        ],
    )
    middleware = SegmentMiddleware(
        HELLO, client=client, trusted_proxies=1, user_id_from_cookie=True
    )
    await call(middleware, scope)
    [page] = sent()
    assert page["context"]["ip"] == "198.51.100.4"
    assert page["userId"] == "u-3"


BROWSER_HEADERS = [
    (b"host", b"shop.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"),
    (b"accept", b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-dest", b"document"),
    (b"referer", b"https://search.example/?q=caf\xe9&token=abc"),
    (b"accept-language", b"de-CH,de;q=0.9"),
]


@pytest.mark.parametrize(
    "spelled",
    [
        pytest.param(lambda pairs: pairs, id="lower-case"),
        pytest.param(lambda pairs: [(n.title(), v) for n, v in pairs], id="title-case"),
        pytest.param(lambda pairs: iter(list(pairs)), id="an iterator"),
        pytest.param(lambda pairs: tuple([n, v] for n, v in pairs), id="lists in a tuple"),
    ],
)
async def test_headers_read_the_same_however_the_server_spells_them(
    client: Client, sent: Sent, spelled: Any
) -> None:
    """Names in any case, pairs in any iterable: the page call carries the same."""
    scope = http_scope(headers=spelled(BROWSER_HEADERS))
    await call(SegmentMiddleware(HELLO, client=client), scope)
    [page] = sent()
    assert page["context"]["userAgent"].startswith("Mozilla/5.0 (X11")
    assert page["context"]["locale"] == "de-CH"
    # The raw byte escaped as a browser sends it, the secret redacted.
    assert page["properties"]["referrer"] == "https://search.example/?q=caf%E9&token=REDACTED"


async def test_a_script_request_in_any_case_makes_no_page_call(client: Client, sent: Sent) -> None:
    middleware = SegmentMiddleware(HELLO, client=client)
    for name in (b"sec-fetch-mode", b"Sec-Fetch-Mode"):
        headers = [*BROWSER_HEADERS[:3], (name, b"cors")]
        await call(middleware, http_scope(headers=headers))
    assert sent() == []


async def test_pathsend_completes_the_response(client: Client, sent: Sent, tmp_path: Any) -> None:
    file = tmp_path / "page.html"
    file.write_text("<p>hi</p>")
    app = Starlette(routes=[Route("/", lambda request: FileResponse(file), name="file")])
    scope = http_scope(extensions={"http.response.pathsend": {}})
    messages = await call(SegmentMiddleware(app, client=client), scope)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]
    assert [m["name"] for m in sent()] == ["file"]


async def test_no_page_call_when_the_body_never_ends(client: Client, sent: Sent) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    await call(SegmentMiddleware(app, client=client), http_scope())
    assert sent() == []


async def test_an_unreadable_scope_is_logged_and_served(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    scope = http_scope(headers=[("host", "not bytes")])
    with caplog.at_level(logging.ERROR, logger="segment.asgi"):
        [start, body] = await call(SegmentMiddleware(HELLO, client=client), scope)
    assert start["status"] == 200 and body["body"] == b"hello"
    assert "could not read the ASGI scope" in caplog.text
    assert isinstance(scope["state"]["analytics"], Analytics)
    assert sent() == []


# -- options --------------------------------------------------------------------------


def test_a_bad_value_names_the_option(client: Client) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        SegmentMiddleware(HELLO, client=client, trusted_proxies="not a network")
    with pytest.raises(ValueError, match="flush_at"):
        SegmentMiddleware(HELLO, write_key="k", flush_at=0)
    with pytest.raises(ValueError, match="websockets"):
        SegmentMiddleware(HELLO, client=client, websockets="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "taken"), [(1, True), (0, False), (None, False)])
def test_websockets_is_a_yes_no_option_as_the_others(
    client: Client, given: int | None, taken: bool
) -> None:
    # 0 and 1 (websockets=int(os.environ["WS"])), None for the default.
    assert SegmentMiddleware(HELLO, client=client, websockets=given).websockets is taken


@pytest.mark.parametrize(
    "value",
    ["shop.example", ["shop.example", ""], ["shop .example"], ["shop*.example"], ["*example"], [1]],
)
def test_a_bad_allowed_hosts_names_the_option(client: Client, value: Any) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        SegmentMiddleware(HELLO, client=client, allowed_hosts=value)


def test_a_client_that_is_not_a_client_is_refused_at_start() -> None:
    """Not at the first view that asks for analytics, with a 500."""
    with pytest.raises(ValueError, match=r"client must be a segment_core\.Client, got str"):
        SegmentMiddleware(HELLO, client="MY_WRITE_KEY")  # type: ignore[arg-type]


def test_the_app_by_keyword(client: Client) -> None:
    """Starlette 0.37 builds a middleware list as ``cls(app=app, **options)``."""
    assert SegmentMiddleware(app=HELLO, client=client).app is HELLO


def test_an_unknown_option_names_the_closest(client: Client) -> None:
    with pytest.raises(TypeError, match="'exclude_path'; did you mean 'exclude_paths'"):
        SegmentMiddleware(HELLO, client=client, exclude_path=["^/admin/"])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="did you mean 'websockets'"):
        SegmentMiddleware(HELLO, client=client, websocket=True)  # type: ignore[call-arg]
    # Written as its environment variable: the option it names, not BROWSER_WRITE_KEY.
    with pytest.raises(TypeError, match="'segment_write_key'; did you mean 'write_key'"):
        SegmentMiddleware(HELLO, segment_write_key="k")  # type: ignore[call-arg]


def test_analytics_python_names_point_to_ours(client: Client) -> None:
    with pytest.raises(
        TypeError, match="'upload_size' is analytics-python's name; use 'max_batch_size'"
    ):
        SegmentMiddleware(HELLO, upload_size=100)  # type: ignore[call-arg]


def test_the_keywords_are_exactly_the_options() -> None:
    """The typed signature lists every client and web option, and nothing else."""
    parameters = set(inspect.signature(SegmentMiddleware.__init__).parameters)
    own = {"self", "app", "client", "websockets", "allowed_hosts"}
    assert parameters - own == set(client_option_names()) | set(web_option_names())


@pytest.mark.slow
def test_typed_for_starlette_middleware_lists(tmp_path: Path) -> None:
    """``Middleware(SegmentMiddleware, ...)`` and ``add_middleware`` type-check (mypy).

    Starlette types them with a ParamSpec, which mypy cannot match against an
    ``__init__`` that takes ``**options``: this keeps the signature explicit.
    """
    app = tmp_path / "app.py"
    app.write_text(
        "from starlette.applications import Starlette\n"
        "from starlette.middleware import Middleware\n"
        "from segment_asgi import SegmentMiddleware\n"
        "app = Starlette(middleware=[Middleware(SegmentMiddleware, write_key='k')])\n"
        "app.add_middleware(SegmentMiddleware, exclude_paths=['^/admin/'], trusted_proxies=1)\n"
        "app.add_middleware(SegmentMiddleware, flush_at='20')\n"
    )
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    arguments = ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(app)]
    stdout, stderr, status = mypy_api.run(arguments)
    if STARLETTE_TYPES_MIDDLEWARE_OPTIONS:
        assert status == 1, stdout + stderr
        assert stdout.count("error:") == 1 and 'Argument "flush_at"' in stdout, stdout
    else:
        # Older Starlette checks no middleware keyword (see above): the valid uses still
        # type-check cleanly, and the bad one goes unnoticed there.
        assert status == 0 and "error:" not in stdout, stdout + stderr


def test_client_and_client_options_are_exclusive(client: Client) -> None:
    with pytest.raises(ValueError, match=r"client= and client options \(host, write_key\)"):
        SegmentMiddleware(HELLO, client=client, write_key="k", host="http://127.0.0.1:1")


def test_only_the_hooks_it_awaits_may_be_async(client: Client) -> None:
    async def identify_traits(user: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(
        ValueError,
        match=r"^identify_traits must be a plain function, not async def; only consent, "
        r"page_filter, page_properties, user_id may be async$",
    ):
        SegmentMiddleware(HELLO, client=client, identify_traits=identify_traits)


@pytest.mark.parametrize("name", ["consent", "user_id", "page_properties"])
def test_a_hook_that_cannot_take_its_arguments_is_refused_naming_it(
    client: Client, name: str
) -> None:
    async def of_three(request: Any, response: Any, extra: Any) -> Any:
        return None

    def of_three_plain(request: Any, response: Any, extra: Any) -> Any:
        return None

    hook = of_three if name == "user_id" else of_three_plain
    with pytest.raises(ValueError, match=f"^{name} is called with [12] positional argument"):
        SegmentMiddleware(HELLO, client=client, **{name: hook})


async def test_options_build_a_client_that_becomes_the_default(
    segment_collector: CollectorHandle, default_client: None
) -> None:
    segment_core.default_client = None
    middleware = SegmentMiddleware(
        HELLO, write_key="test-key", host=segment_collector.url, send_in_tests=True
    )
    assert segment_core.default_client is middleware.client
    await call(middleware, http_scope())
    assert middleware.client.flush(timeout=10)
    [event] = segment_collector.wait_for(1, type="page")
    assert event["message"]["name"] == "hello"


async def test_without_options_the_default_client_of_the_environment_s_key_is_diverted(
    monkeypatch: pytest.MonkeyPatch, default_client: None
) -> None:
    # The key in the environment, nothing passed: the default client made from it
    # puts a test's events in the outbox, as one built from options would.
    from segment_core.testing import outbox

    monkeypatch.setattr(segment_core, "default_client", None)
    monkeypatch.setattr(segment_core, "_keyless_client", None)
    monkeypatch.setattr(segment_core, "host", "http://127.0.0.1:9")  # never reached
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "ci-secret-key")
    middleware = SegmentMiddleware(HELLO)
    await call(middleware, http_scope())
    segment_core.track("u", "Outside A Request")
    made = segment_core.default_client
    assert made is not None and made.config.write_key == "ci-secret-key"
    assert made.flush(timeout=10)
    assert [(m["type"], m.get("name") or m.get("event")) for m in outbox] == [
        ("page", "hello"),
        ("track", "Outside A Request"),
    ]
    assert made.stats()["failed"] == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SEGMENT_WRITE_KEY", "ci-secret-key\n"), ("SEGMENT_HOST", "api.example")],
)
def test_an_unusable_environment_variable_is_refused_as_the_app_starts(
    monkeypatch: pytest.MonkeyPatch, default_client: None, variable: str, value: str
) -> None:
    """Without client options the middleware sends with the default client: one the
    environment makes unusable is refused now, not discarded request after request."""
    monkeypatch.setattr(segment_core, "default_client", None)
    monkeypatch.setattr(segment_core, "_keyless_client", None)
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "ci-secret-key")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=f"environment variable {variable}"):
        SegmentMiddleware(HELLO)


async def test_send_in_tests_sends_with_the_default_client_another_middleware_diverted(
    monkeypatch: pytest.MonkeyPatch, default_client: None, segment_collector: CollectorHandle
) -> None:
    monkeypatch.setattr(segment_core, "default_client", None)
    monkeypatch.setattr(segment_core, "_keyless_client", None)
    monkeypatch.setattr(segment_core, "host", segment_collector.url)
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "ci-secret-key")
    await call(SegmentMiddleware(HELLO), http_scope())  # an earlier test's app: diverted
    sending = SegmentMiddleware(HELLO, send_in_tests=True)
    await call(sending, http_scope())
    made = segment_core.default_client
    assert made is not None and made.flush(timeout=10)
    assert [e["message"]["name"] for e in segment_collector.events()] == ["hello"]


async def test_without_options_the_default_client_is_used(
    segment_collector: CollectorHandle, default_client: None
) -> None:
    middleware = SegmentMiddleware(HELLO)
    default = Client("test-key", host=segment_collector.url)
    segment_core.default_client = default
    assert middleware.client is default
    await call(middleware, http_scope())
    assert default.flush(timeout=10)
    assert [e["message"]["name"] for e in segment_collector.events()] == ["hello"]


def invitation(request: Request) -> Response:
    return HTMLResponse("welcome")


async def test_a_route_secret_routed_with_a_fragment_of_the_request_line_is_redacted(
    client: Client, sent: Sent
) -> None:
    # uvicorn's h11 passes "/invite/SEKRIT01#frag" on as it came: the router captures
    # the fragment with the value, which the page's path leaves out.
    app = Starlette(routes=[Route("/invite/{invite_token}", invitation, name="invite")])
    await call(SegmentMiddleware(app, client=client), http_scope("/invite/SEKRIT01#frag"))
    [page] = sent()
    assert page["properties"]["path"] == page["context"]["page"]["path"] == "/invite/REDACTED"
    assert "SEKRIT01" not in repr(page)
