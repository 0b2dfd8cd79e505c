"""Setting the extension up: config keys, keywords, app factories, errors, the CLI."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, current_app, request

import segment_core
from segment_core import Client
from segment_core.testing import capture, outbox
from segment_flask import SegmentFlask, SegmentState, get_state
from tests.flask.app import create_app
from tests.flask.conftest import Sent


@pytest.fixture
def own_clients() -> Iterator[list[Client]]:
    """Clients the extension built for a test's apps, shut down after it."""
    clients: list[Client] = []
    yield clients
    for client in clients:
        client.shutdown(timeout=5)


def test_factory_with_two_apps_and_different_options(
    segment_client: Client, segment_collector: Any, sent: Sent, own_clients: list[Client]
) -> None:
    segment = SegmentFlask(page_name="template")  # defaults shared by every app
    shop = create_app({"SEGMENT_EXCLUDE_PATHS": [r"^/products/"]}, name="shop")
    blog = create_app(
        {"SEGMENT_WRITE_KEY": "blog-key", "SEGMENT_HOST": segment_collector.url}, name="blog"
    )
    segment.init_app(shop, client=segment_client)
    segment.init_app(blog, flush_at=1)
    own_clients.append(get_state(blog).client)

    assert get_state(shop).client is segment_client and not get_state(shop).owns_client
    blog_client = get_state(blog).client
    assert blog_client is not segment_client and get_state(blog).owns_client
    assert blog_client.config.write_key == "blog-key" and blog_client.config.flush_at == 1
    assert not hasattr(segment, "app")
    with shop.app_context():
        assert segment.client is segment_client
        assert segment.options.page_name == "template"

    shop.test_client().get("/products/1")  # excluded in this app only
    shop.test_client().get("/")
    blog.test_client().get("/products/2")
    assert blog_client.flush(timeout=10)
    names = sorted(m["name"] for m in sent(type="page"))
    assert names == ["/", "/products/<int:pk>"]


def test_two_apps_share_a_client_by_config_key(segment_client: Client, sent: Sent) -> None:
    first = create_app({"SEGMENT_CLIENT": segment_client}, name="first")
    second = create_app({"SEGMENT_CLIENT": segment_client}, name="second")
    SegmentFlask(first)
    SegmentFlask(second, page_calls=False)
    first.test_client().get("/")
    second.test_client().get("/track")
    assert sorted(m["type"] for m in sent()) == ["page", "track"]


def test_keywords_override_config(make_app: Any) -> None:
    app = make_app(SEGMENT_PAGE_NAME="path", page_name="template", SEGMENT_HONOR_DNT=True)
    options = get_state(app).options
    assert options.page_name == "template" and options.honor_dnt is True


@pytest.mark.parametrize(
    ("config", "keywords"),
    [
        ({"SEGMENT_UPLOAD_SIZE": 100, "SEGMENT_UPLOAD_INTERVAL": 10}, {"max_batch_size": 5}),
        ({"SEGMENT_MAX_BATCH_SIZE": 100, "SEGMENT_UPLOAD_INTERVAL": 10}, {"upload_size": 5}),
    ],
)
def test_keywords_override_config_under_either_name(
    config: dict[str, Any], keywords: dict[str, Any], own_clients: list[Client]
) -> None:
    # analytics-python's names (upload_size, upload_interval) are aliases of ours.
    app = create_app({"SEGMENT_SEND": False, **config})
    SegmentFlask(app, flush_interval=1, **keywords)
    own_clients.append(get_state(app).client)
    assert get_state(app).client.config.max_batch_size == 5
    assert get_state(app).client.config.flush_interval == 1


def test_init_app_keywords_override_the_extensions_under_either_name(
    own_clients: list[Client],
) -> None:
    segment = SegmentFlask(upload_size=7, flush_interval=3)
    app = create_app({"SEGMENT_SEND": False})
    segment.init_app(app, max_batch_size=5, upload_interval=1)
    own_clients.append(get_state(app).client)
    assert get_state(app).client.config.max_batch_size == 5
    assert get_state(app).client.config.flush_interval == 1


def test_one_option_set_twice_in_one_place_names_both() -> None:
    app = create_app({"SEGMENT_SEND": False, "SEGMENT_UPLOAD_SIZE": 1, "SEGMENT_MAX_BATCH_SIZE": 2})
    with pytest.raises(TypeError, match=r"'SEGMENT_UPLOAD_SIZE'\] and .*'SEGMENT_MAX_BATCH_SIZE'"):
        SegmentFlask(app)
    assert "segment" not in app.extensions
    with pytest.raises(TypeError, match=r"\(upload_interval=...\) and .*\(flush_interval=...\)"):
        SegmentFlask(upload_interval=1, flush_interval=2)


def test_state_lives_in_app_extensions(app: Flask, segment_client: Client) -> None:
    state = app.extensions["segment"]
    assert isinstance(state, SegmentState) and state.client is segment_client
    with pytest.raises(RuntimeError, match="not set up on app 'other'"):
        get_state(Flask("other"))


def test_the_first_app_client_becomes_the_default(own_clients: list[Client]) -> None:
    segment_core.default_client = None
    app = create_app({"SEGMENT_WRITE_KEY": "k", "SEGMENT_SEND": False})
    SegmentFlask(app)
    assert segment_core.default_client is get_state(app).client


def test_double_init_app_is_an_error(segment_client: Client) -> None:
    app = create_app()
    segment = SegmentFlask()
    segment.init_app(app, client=segment_client)
    with pytest.raises(RuntimeError, match=r"already set up on app 'shop'.*once per app"):
        segment.init_app(app, client=segment_client)
    with pytest.raises(RuntimeError, match="already set up"):
        SegmentFlask(app, client=segment_client)


def test_an_app_that_is_not_flasks_is_refused_naming_what_it_is(segment_client: Client) -> None:
    with pytest.raises(TypeError, match=r"needs the flask\.Flask app, got flask\.blueprints"):
        SegmentFlask(Blueprint("shop", __name__), client=segment_client)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got builtins\.str"):
        SegmentFlask().init_app("shop", client=segment_client)  # type: ignore[arg-type]


def test_current_app_sets_up_the_app_it_stands_for(own_clients: list[Client]) -> None:
    app = create_app({"SEGMENT_WRITE_KEY": "k", "SEGMENT_SEND": False})
    with app.app_context():
        SegmentFlask(current_app)  # its own client, closed with the app
    assert get_state(app).client.config.write_key == "k"


def test_unknown_config_key_warns_with_the_closest(segment_client: Client) -> None:
    app = create_app({"SEGMENT_PAGE_CALL": False, "SEGMENT_CLIENT": segment_client})
    with pytest.warns(UserWarning, match="'SEGMENT_PAGE_CALL'.*did you mean 'SEGMENT_PAGE_CALLS'"):
        SegmentFlask(app)
    assert get_state(app).options.page_calls is True  # the typo changed nothing


def test_the_warning_points_at_the_caller(segment_client: Client) -> None:
    app = create_app({"SEGMENT_FLUSH_ATT": 5})
    with pytest.warns(UserWarning, match="SEGMENT_FLUSH_AT'") as record:
        SegmentFlask().init_app(app, client=segment_client)
    assert record[0].filename == __file__


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"'page_call'.*did you mean 'page_calls'"):
        SegmentFlask(page_call=False)
    with pytest.raises(TypeError, match="'flushat'"):
        SegmentFlask().init_app(create_app(), flushat=3)
    with pytest.raises(TypeError, match="'segment_write_key'; did you mean 'write_key'"):
        SegmentFlask(segment_write_key="k")


def test_a_config_key_prefixed_twice_is_hinted_as_the_option(segment_client: Client) -> None:
    app = create_app({"SEGMENT_SEGMENT_WRITE_KEY": "k", "SEGMENT_CLIENT": segment_client})
    with pytest.warns(UserWarning, match="did you mean 'SEGMENT_WRITE_KEY'"):
        SegmentFlask(app)


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("SEGMENT_ENDPOINT", "SEGMENT_HOST"),  # Go's Config.Endpoint
        ("SEGMENT_API_HOST", "SEGMENT_HOST"),  # analytics.js's apiHost
        ("SEGMENT_KEY", "SEGMENT_WRITE_KEY"),
        ("SEGMENT_BATCH_SIZE", "SEGMENT_FLUSH_AT"),
    ],
)
def test_a_config_key_other_segment_libraries_use_is_hinted_as_ours(
    segment_client: Client, key: str, meant: str
) -> None:
    app = create_app({key: "x", "SEGMENT_CLIENT": segment_client})
    with pytest.warns(UserWarning, match=f"'{key}' is ignored; did you mean '{meant}'"):
        SegmentFlask(app)


def test_a_keyword_other_segment_libraries_use_is_hinted_as_ours() -> None:
    with pytest.raises(TypeError, match="'endpoint'; did you mean 'host'"):
        Client("k", endpoint="https://api.segment.io")
    with pytest.raises(TypeError, match="'verbose'; did you mean 'debug'"):
        SegmentFlask(verbose=True)


async def _async_consent(request: Any) -> bool:
    return False  # a coroutine, which would count as consent


@pytest.mark.parametrize(
    ("config", "keywords", "message"),
    [
        ({"SEGMENT_FLUSH_AT": 0}, {}, r"app.config\['SEGMENT_FLUSH_AT'\]: flush_at must be"),
        ({"SEGMENT_UPLOAD_SIZE": 0}, {}, r"'SEGMENT_UPLOAD_SIZE'\]: upload_size must be"),
        ({}, {"host": "ftp://x"}, r"SegmentFlask\(host=...\): host must be an http"),
        ({"SEGMENT_TRUSTED_PROXIES": "nope"}, {}, r"TRUSTED_PROXIES'\]: trusted_proxies"),
        ({}, {"page_calls": "yes"}, r"page_calls=...\): page_calls must be True or False"),
        ({"SEGMENT_CLIENT": "a client"}, {}, r"SEGMENT_CLIENT'\]: must be a segment_core.Client"),
        ({}, {"consent": _async_consent}, r"consent must be a plain function, not async def"),
        (
            {"SEGMENT_USER_ID": lambda: "u1"},
            {},
            r"USER_ID'\]: user_id is called with 1 positional argument; function \(\) cannot",
        ),
        ({}, {"page_filter": lambda request: True}, r"page_filter is called with 2 positional"),
        ({"SEGMENT_ON_ERROR": "tests.no_such:hook"}, {}, r"ON_ERROR'\]: on_error: cannot import"),
        (
            {"SEGMENT_COOKIE_NAME": "__Host-ajs", "SEGMENT_COOKIE_DOMAIN": ".shop.example"},
            {},
            r"COOKIE_NAME'\]: cookie_name '__Host-ajs' cannot go with cookie_domain",
        ),
        # The session's cookie: each would overwrite the other.
        (
            {"SEGMENT_COOKIE_NAME": "session"},
            {},
            r"COOKIE_NAME'\]: cookie_name 'session' is already the name of another cookie "
            r"\(app.config\['SESSION_COOKIE_NAME'\]\)",
        ),
        (
            {"SESSION_COOKIE_NAME": "shop"},
            {"user_cookie_name": "shop"},
            r"SegmentFlask\(user_cookie_name=...\): user_cookie_name 'shop' is already",
        ),
        # An error about two options names the one set.
        (
            {"SEGMENT_USER_COOKIE_NAME": "ajs_anonymous_id"},
            {},
            r"^app.config\['SEGMENT_USER_COOKIE_NAME'\]: .* are both 'ajs_anonymous_id'",
        ),
        (
            {},
            {"user_cookie_name": "ajs_anonymous_id"},
            r"^SegmentFlask\(user_cookie_name=...\): .* are both 'ajs_anonymous_id'",
        ),
        (
            {"SEGMENT_OAUTH_CLIENT_ID": "client-1"},
            {},
            r"^app.config\['SEGMENT_OAUTH_CLIENT_ID'\]: oauth_client_key, oauth_key_id must be",
        ),
    ],
)
def test_bad_values_name_the_option(
    config: dict[str, Any], keywords: dict[str, Any], message: str
) -> None:
    app = create_app({"SEGMENT_SEND": False, **config})
    with pytest.raises(ValueError, match=message):
        SegmentFlask(app, **keywords)
    assert "segment" not in app.extensions


def add_origin(message: dict[str, Any]) -> dict[str, Any]:
    message.setdefault("properties", {})["origin"] = "config"
    return message


def test_client_hooks_may_be_dotted_paths_as_web_hooks_are(
    segment_collector: Any, own_clients: list[Client]
) -> None:
    app = create_app(
        {
            "SEGMENT_WRITE_KEY": "k",
            "SEGMENT_HOST": segment_collector.url,
            "SEGMENT_BEFORE_SEND": "tests.flask.test_setup:add_origin",
            "SEGMENT_ON_ERROR": "logging.exception",
            "SEGMENT_USER_ID": "tests.flask.test_setup.no_user",
        }
    )
    SegmentFlask(app)
    client = get_state(app).client
    own_clients.append(client)
    assert client.config.on_error is logging.exception
    assert app.test_client().get("/track").status_code == 200
    assert client.flush(timeout=10)
    events = segment_collector.events()
    assert sorted(e["message"]["type"] for e in events) == ["page", "track"]
    assert {e["message"]["properties"]["origin"] for e in events} == {"config"}


def no_user(request: Any) -> None:
    return None


def test_no_write_key_disables_and_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, sent: Sent
) -> None:
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.setattr(segment_core, "default_client", None)  # nor one to follow
    monkeypatch.setattr(segment_core, "_keyless_client", None)
    app = create_app()
    with caplog.at_level(logging.WARNING, logger="segment.flask"):
        SegmentFlask(app)
    [record] = [r for r in caplog.records if r.name == "segment.flask"]
    assert "no write key for app 'shop'" in record.getMessage()
    assert "SEGMENT_WRITE_KEY" in record.getMessage()
    client = get_state(app).client
    assert not client.config.enabled
    response = app.test_client().get("/track")
    assert response.status_code == 200
    assert client.stats()["dropped"].get("disabled") == 2  # the track and the page
    assert sent() == []


def test_client_options_beside_a_given_client_warn(segment_client: Client) -> None:
    app = create_app({"SEGMENT_FLUSH_AT": 5})
    with pytest.warns(UserWarning, match=r"'SEGMENT_FLUSH_AT'\] ignored.*client given by"):
        SegmentFlask(app, client=segment_client)


# -- the CLI --------------------------------------------------------------------------


def test_cli_status(segment_collector: Any, own_clients: list[Client]) -> None:
    app = create_app(
        {"SEGMENT_WRITE_KEY": "secret-write-key", "SEGMENT_HOST": segment_collector.url}
    )
    SegmentFlask(app, trusted_proxies=["10.0.0.0/8"], page_filter="tests.flask.app.only_home")
    own_clients.append(get_state(app).client)
    result = app.test_cli_runner().invoke(args=["segment", "status"])
    assert result.exit_code == 0, result.output
    assert "secret-write-key" not in result.output
    assert "write_key: secr…" in result.output
    assert f"host: {segment_collector.url}" in result.output
    assert "trusted_proxies: ['10.0.0.0/8']" in result.output
    assert "page_filter: only_home" in result.output
    assert "reachable: True" in result.output
    for counter in ("queued", "sent", "dropped", "retries"):
        assert f"  {counter}: " not in result.output  # the CLI's own counters mean nothing

    result = app.test_cli_runner().invoke(args=["segment", "status", "--json"])
    report = json.loads(result.output)
    assert report["client"]["write_key"] == "secr…"
    assert "stats" not in report
    assert report["host_check"]["reachable"] is True
    assert report["host_check"]["detail"].startswith("answered HTTP ")
    assert report["web"]["page_name"] == "route"


def test_cli_status_fails_when_the_host_does_not_answer(own_clients: list[Client]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app({"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": f"http://127.0.0.1:{port}"})
    SegmentFlask(app)
    own_clients.append(get_state(app).client)
    result = app.test_cli_runner().invoke(args=["segment", "status", "--timeout", "2"])
    assert result.exit_code == 1
    assert "the host does not answer" in result.output
    assert "refused" in result.output.lower()


def test_cli_flush_delivers(app: Flask, segment_client: Client, segment_collector: Any) -> None:
    with app.app_context():
        segment_client.track("u1", "Queued Before Flush")
    result = app.test_cli_runner().invoke(args=["segment", "flush", "--timeout", "10"])
    assert result.exit_code == 0, result.output
    assert "every accepted event was delivered" in result.output
    [event] = segment_collector.events(type="track")
    assert event["message"]["event"] == "Queued Before Flush"


def test_cli_flush_reports_what_is_left(
    app: Flask, segment_client: Client, segment_collector: Any
) -> None:
    segment_collector.faults({"delay": 1.0})  # the collector answers late
    segment_client.track("u1", "Slow")
    result = app.test_cli_runner().invoke(args=["segment", "flush", "--timeout", "0.1"])
    assert result.exit_code == 1
    assert "1 event(s) still waiting" in result.output
    segment_collector.wait_for(1, timeout=10, type="track")


@pytest.mark.parametrize(
    ("command", "value"), [("status", "0"), ("status", "nan"), ("flush", "-1")]
)
def test_a_timeout_that_is_no_wait_is_a_usage_error(app: Flask, command: str, value: str) -> None:
    result = app.test_cli_runner().invoke(args=["segment", command, "--timeout", value])
    assert result.exit_code == 2
    assert "Invalid value for '--timeout'" in result.output


def test_the_module_api_follows_the_app_whose_context_it_is(segment_client: Client) -> None:
    # An app created first (a module-level wsgi app a test imports), then a TESTING
    # app: what the second one sends, in a request or a CLI command, is its own.
    first = Flask("first")
    SegmentFlask(first, client=segment_client)
    second = Flask("second")
    second.config.update(
        TESTING=True, SEGMENT_WRITE_KEY="second-key", SEGMENT_HOST="http://127.0.0.1:9"
    )
    SegmentFlask(second)

    @second.get("/")
    def home() -> str:
        segment_core.track("u1", "In The Request")
        return "<p>home</p>"

    @second.cli.command("signup")
    def signup() -> None:
        segment_core.track("u1", "In The Command")

    outbox.clear()
    assert second.test_client().get("/").status_code == 200
    result = second.test_cli_runner().invoke(args=["signup"])
    assert result.exit_code == 0, result.output
    tracked = [m["event"] for m in outbox if m["type"] == "track"]
    assert tracked == ["In The Request", "In The Command"]
    with first.app_context():
        assert segment_core.get_client() is segment_client
    assert segment_core.get_client() is segment_core.default_client  # no app context


def test_the_apps_own_hooks_before_and_after_init_app(segment_client: Client) -> None:
    # Registered before init_app: a before_request hook finds request.analytics, an
    # after_request hook that returns a new response keeps the cookie on it, and one
    # that fails (a 500) leaves no page call behind.
    app = Flask("hooks")

    @app.before_request
    def audit() -> None:
        request.analytics.track("Seen")  # type: ignore[attr-defined]

    @app.after_request
    def replace(response: Response) -> Response:
        if request.path == "/fails":
            raise RuntimeError("an after_request hook that fails")
        return Response(response.get_data(), status=response.status_code, mimetype="text/html")

    SegmentFlask(app, client=segment_client)
    app.add_url_rule("/", "home", lambda: "<p>home</p>")
    app.add_url_rule("/fails", "fails", lambda: "<p>fails</p>")
    with capture() as events:
        response = app.test_client().get("/", headers={"Accept": "text/html"})
        failed = app.test_client().get("/fails", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "ajs_anonymous_id=" in response.headers["Set-Cookie"]
    assert failed.status_code == 500
    pages = [e["properties"]["path"] for e in events if e["type"] == "page"]
    assert pages == ["/"]
    assert [e["event"] for e in events if e["type"] == "track"] == ["Seen", "Seen"]


def test_a_same_app_referrer_of_an_app_that_routes_by_subdomain_or_host(
    segment_client: Client,
) -> None:
    subdomains = Flask("subdomains", subdomain_matching=True)
    subdomains.config["SERVER_NAME"] = "example.com"
    tenant = Blueprint("tenant", "subdomains", subdomain="<tenant>")
    tenant.add_url_rule("/invite/<key>", "invite", lambda tenant, key: "<p>invite</p>")
    tenant.add_url_rule("/signup", "signup", lambda tenant: "<p>signup</p>")
    subdomains.register_blueprint(tenant)
    hosts = Flask("hosts", host_matching=True, static_host="static.example.com")
    hosts.add_url_rule("/invite/<key>", "invite", lambda key: "<p>i</p>", host="app.example.com")
    hosts.add_url_rule("/signup", "signup", lambda: "<p>s</p>", host="app.example.com")
    for app, origin in ((subdomains, "http://acme.example.com"), (hosts, "http://app.example.com")):
        SegmentFlask(app, client=segment_client)
        with capture() as events:
            app.test_client().get(
                "/signup",
                base_url=origin,
                headers={"Accept": "text/html", "Referer": f"{origin}/invite/SECRET"},
            )
        [page] = [e for e in events if e["type"] == "page"]
        assert page["properties"]["referrer"] == f"{origin}/invite/REDACTED"


def test_the_library_s_loggers_are_on_again_after_a_dict_config_made_before_the_app(
    segment_client: Client,
) -> None:
    """As Flask's docs configure logging: dictConfig() after the imports, before the
    app is made, turns off the loggers that exist (the library's)."""
    loggers = [logging.getLogger(name) for name in ("segment", "segment.core", "segment.flask")]
    for logger in loggers:
        logger.disabled = True  # what dictConfig does to the loggers that exist
    try:
        SegmentFlask(create_app(), client=segment_client)
        assert [logger.disabled for logger in loggers] == [False, False, False]
    finally:
        for logger in loggers:
            logger.disabled = False


def test_set_up_after_a_request_is_refused_and_leaves_the_app_as_it_was(
    segment_client: Client,
) -> None:
    app = create_app()
    assert app.test_client().get("/").status_code == 200
    with pytest.raises(RuntimeError, match="has already handled a request: set Segment up"):
        SegmentFlask(app, client=segment_client)
    assert "segment" not in app.extensions
    with capture() as events:
        assert app.test_client().get("/", headers={"Accept": "text/html"}).status_code == 200
    assert events == []


def test_a_logger_the_app_turned_off_before_importing_the_library_stays_off() -> None:
    code = """
import logging
logging.getLogger("segment.core").disabled = True  # the app's own choice
from flask import Flask
from segment_flask import SegmentFlask
SegmentFlask(Flask("shop"), send=False)
print(logging.getLogger("segment.core").disabled, logging.getLogger("segment.flask").disabled)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.split()) == (0, ["True", "False"]), result.stderr
