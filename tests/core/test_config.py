from __future__ import annotations

import decimal
import functools
import logging
import re
import sys
from typing import Any

import pytest

from segment_core import Client, Config
from segment_core.config import MAX_SECONDS, check_option
from tests.receiver import Receiver


def test_defaults_match_the_documented_ones() -> None:
    config = Config.from_options("key")
    assert config.host == "https://api.segment.io"
    assert (config.flush_at, config.flush_interval, config.max_queue_size) == (20, 5.0, 10_000)
    assert config.gzip is True
    assert (config.timeout, config.max_retries, config.shutdown_timeout) == (15.0, 10, 5.0)
    assert config.max_retry_after == 300.0
    assert (config.max_total_backoff_duration, config.max_rate_limit_duration) == (600.0, 1800.0)


def test_analytics_python_option_names_are_aliases() -> None:
    config = Config.from_options("key", upload_size=7, upload_interval=0.25, thread=2)
    assert (config.max_batch_size, config.flush_interval, config.max_in_flight) == (7, 0.25, 2)
    # A batch is due once a full batch waits, even with the default flush_at of 20.
    assert (config.flush_at, config.batch_due_at) == (20, 7)


def test_analytics_python_s_default_config_names_read_the_options_they_stand_for() -> None:
    # Client.DefaultConfig.upload_size in analytics-python: Config.upload_size here.
    assert (Config.upload_size, Config.upload_interval, Config.thread) == (2500, 5.0, 1)
    # analytics-python 2.4's: how long a batch may stay rate limited, as a whole.
    assert Config.max_rate_limit_duration == 1800.0
    config = Config.from_options("key", upload_size=7, max_rate_limit_duration=30)
    assert (config.upload_size, config.max_rate_limit_duration) == (7, 30)
    assert config.max_retry_after == 300.0  # each wait's cap is retry_after's


def test_an_upload_size_over_a_batch_s_most_asks_for_the_largest_batches() -> None:
    # analytics-python takes any upload_size (its batches stop at 500 KB).
    assert Config.from_options("key", upload_size=5000).max_batch_size == 2500
    with pytest.raises(ValueError, match="max_batch_size must be between 1 and 2500, got 5000"):
        Config.from_options("key", max_batch_size=5000)
    with pytest.raises(ValueError, match="upload_size must be between 1 and 2500, got 0"):
        Config.from_options("key", upload_size=0)


def test_an_alias_and_its_target_together_are_refused() -> None:
    with pytest.raises(TypeError, match="upload_size and max_batch_size"):
        Config.from_options("key", upload_size=7, max_batch_size=8)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("upload_size", 0, "upload_size must be between 1 and 2500, got 0"),
        ("upload_interval", -1, "upload_interval must be >= 0, got -1"),
        ("thread", 0, "thread must be between 1 and 64, got 0"),
        ("max_rate_limit_duration", -1, "max_rate_limit_duration must be >= 0, got -1"),
    ],
)
def test_a_bad_alias_value_names_the_alias_the_caller_wrote(
    option: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        Client("key", **{option: value})


@pytest.mark.parametrize(
    ("options", "read"),
    [
        ({"gzip": 1, "send": 0, "sync_mode": 1, "debug": 0}, (True, False, True, False)),
        (dict.fromkeys(("gzip", "send", "sync_mode", "debug")), (True, True, False, False)),
    ],
)
def test_flags_as_analytics_python_reads_them(
    options: dict[str, Any], read: tuple[bool, ...]
) -> None:
    # analytics.send = int(os.environ.get("SEGMENT_SEND", "0")): 0 and 1 as False and True,
    # None as the default.
    config = Config.from_options("key", **options)
    assert (config.gzip, config.send, config.sync_mode, config.debug) == read


@pytest.mark.parametrize(
    ("timeout", "read"),
    [
        ((3.05, 27), 30.05),
        ([2, 3], None),
        (None, 15.0),
        (4, 4),
        ((3.05, None), 18.05),  # requests: no read limit; here the default's
        ((None, 5), 20.0),
        ((1,), None),
    ],
)
def test_timeouts_as_analytics_python_takes_them(timeout: Any, read: float | None) -> None:
    # requests' (connect, read) pair bounds the whole request by their sum; None is
    # the default, alone or in the pair (a request without a bound would hold flush()
    # and shutdown()).
    if read is None:
        with pytest.raises(ValueError, match="timeout must be a number of seconds"):
            Config.from_options("key", timeout=timeout)
    else:
        assert Config.from_options("key", timeout=timeout).timeout == read


def test_upload_interval_zero_sends_at_once(receiver: Receiver) -> None:
    client = Client("key", host=receiver.url, upload_interval=0)
    client.track("u1", "At once")
    assert [m["event"] for m in receiver.wait_for_messages(1)] == ["At once"]
    assert client.shutdown(timeout=5)


def test_unknown_option_suggests_the_closest_name() -> None:
    with pytest.raises(TypeError, match=r"unknown option 'flush_intervall'.*'flush_interval'"):
        Client("key", flush_intervall=3)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("flush_at", 0, "flush_at must be between 1 and 2500"),
        ("flush_at", 2501, "flush_at must be between 1 and 2500"),
        ("flush_at", "20", "flush_at must be an integer"),
        ("flush_interval", -0.5, "flush_interval must be >= 0"),
        ("max_queue_size", 0, "max_queue_size must be at least 1"),
        ("gzip", "yes", "gzip must be True or False"),
        ("timeout", -1, "timeout must be > 0"),
        ("max_retries", -1, "max_retries must be at least 0"),
        ("host", "api.segment.io", "host must be an http:// or https:// URL"),
        ("on_error", 3, "on_error must be callable"),
        ("before_send", "x", "before_send: 'x' is not a dotted path to a callable"),
        # A hook that can never take the arguments it is called with.
        ("before_send", lambda message, client: message, "before_send is called with 1 pos"),
        ("on_error", lambda error: None, "on_error is called with 2 positional arguments"),
        ("on_failure", lambda message: None, "on_failure is called with 2 positional"),
        ("now", lambda tz: None, "now is called with 0 positional arguments"),
        ("uid", "os.getenv", "uid is called with 0 positional arguments"),
        ("default_context", [1], "default_context must be a dict"),
        ("default_integrations", "all", "default_integrations must be a dict"),
        ("shutdown_timeout", None, "shutdown_timeout must be a number"),
        ("send", "1", "send must be True or False"),
        ("debug", "false", "debug must be True or False"),
        ("gzip", 2, "gzip must be True or False"),
        ("send", -1, "send must be True or False"),
        ("sync_mode", 3, "sync_mode must be True or False"),
        ("timeout", (3, 0), r"timeout must be a number of seconds > 0 or a \(connect, read\) pair"),
        ("timeout", (1, 2, 3), "timeout must be a number of seconds > 0 or a"),
        ("log_handler", "stderr", "log_handler must be a logging.Handler"),
        ("retry_backoff_min", -0.5, "retry_backoff_min must be >= 0"),
        # NaN compares false with everything: it would pass every bound.
        ("timeout", float("nan"), "timeout must be a finite number of seconds, got nan"),
        ("flush_interval", float("nan"), "flush_interval must be a finite number"),
        ("shutdown_timeout", float("inf"), "shutdown_timeout must be a finite number"),
        ("max_total_backoff_duration", float("nan"), "max_total_backoff_duration must be a fin"),
    ],
)
def test_bad_values_raise_value_error_naming_the_option(
    option: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Client("key", **{option: value})


def test_a_hook_is_checked_as_it_is_called_not_as_the_function_it_wraps() -> None:
    """A decorator that supplies the first argument (a session, a context)."""

    def with_session(hook: Any) -> Any:
        @functools.wraps(hook)
        def wrapper(message: Any) -> Any:
            return hook("session", message)

        return wrapper

    @with_session
    def scrub(session: str, message: dict[str, Any]) -> dict[str, Any]:
        return message

    Client("key", send=False, before_send=scrub).shutdown()


async def _async_scrub(message: dict[str, Any]) -> dict[str, Any]:
    return message


class _AsyncOnError:
    async def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        pass


@pytest.mark.parametrize(
    ("option", "hook"),
    [
        ("before_send", _async_scrub),
        ("before_send", functools.partial(_async_scrub)),
        ("on_error", _AsyncOnError()),
        ("on_error", functools.partial(_AsyncOnError())),
        ("on_success", _async_scrub),
    ],
    ids=["function", "partial", "callable-object", "partial-of-callable-object", "on_success"],
)
def test_an_async_hook_is_refused_as_it_would_never_run(option: str, hook: object) -> None:
    with pytest.raises(ValueError, match=f"{option} must be a plain function, not async def"):
        Client("key", send=False, **{option: hook})


@pytest.mark.parametrize("value", [False, 0, ""])
@pytest.mark.parametrize("option", ["on_error", "before_send", "log_handler"])
def test_a_false_hook_is_none_as_analytics_python_reads_it(option: str, value: object) -> None:
    client = Client("key", send=False, **{option: value})
    try:
        assert getattr(client.config, option) is None
        assert client.track("u1", "Kept")[0]
    finally:
        client.shutdown()


def test_write_key_must_be_a_string() -> None:
    with pytest.raises(ValueError, match="write_key must be a string"):
        Client(123)  # type: ignore[arg-type]


def test_environment_variables_are_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "from-env")
    monkeypatch.setenv("SEGMENT_HOST", "http://127.0.0.1:1234")
    config = Config.from_options()
    assert (config.write_key, config.host) == ("from-env", "http://127.0.0.1:1234")
    explicit = Config.from_options("explicit", host="https://events.eu1.segmentapis.com")
    assert (explicit.write_key, explicit.host) == ("explicit", "https://events.eu1.segmentapis.com")


def test_incomplete_oauth_options_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="oauth_client_key, oauth_key_id must be set too"):
        Client("key", oauth_client_id="id")
    with pytest.raises(ValueError, match="oauth_client_key is not a PEM private key"):
        Client("key", oauth_client_id="id", oauth_key_id="kid", oauth_client_key="not a key")
    with pytest.raises(ValueError, match="oauth_auth_server must be an http"):
        Client("key", oauth_auth_server="oauth2.segment.io")
    # analytics-python's module-level defaults: None for the server and scope.
    Client("key", oauth_client_id=None, oauth_auth_server=None, oauth_scope=None, send=False)


def test_public_dict_masks_the_write_key() -> None:
    shown = Config.from_options("secret-write-key", on_error=print).public_dict()
    assert shown["write_key"] == "secr…"
    assert "secret-write-key" not in repr(shown)
    assert shown["on_error"] == "print"


def test_log_handler_receives_the_clients_logs() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    try:
        Client(None, log_handler=handler, send=True)
        assert any("no write key" in r.getMessage() for r in records)
    finally:
        logging.getLogger("segment").removeHandler(handler)


def test_debug_shows_the_clients_debug_logs(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("segment")
    handlers, level = list(logger.handlers), logger.level
    try:
        for handler in handlers:
            logger.removeHandler(handler)
        client = Client("key", debug=True, send=False)
        assert logger.level == logging.DEBUG
        assert any(isinstance(h, logging.StreamHandler) for h in logger.handlers)
        logger.debug("a debug line from the client")
        assert "a debug line from the client" in capsys.readouterr().err
        Client("key", debug=True, send=False)  # a second client adds no second handler
        assert len(logger.handlers) == 1
        assert client.config.debug is True
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("value", [0, -1, "10", True, 2.5])
def test_max_batch_size_is_checked_under_both_names(value: object) -> None:
    for name in ("max_batch_size", "upload_size"):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            Config.from_options("key", **{name: value})


def test_a_batch_is_due_at_flush_at_or_a_full_batch() -> None:
    assert Config.from_options("key", flush_at=5, max_batch_size=100).batch_due_at == 5
    assert Config.from_options("key", flush_at=500, max_batch_size=100).batch_due_at == 100


def test_public_dict_masks_the_oauth_key() -> None:
    from tests.core.test_analytics_python_compat import _key_pair

    private, _ = _key_pair()
    shown = Config.from_options(
        "key", oauth_client_id="id", oauth_client_key=private, oauth_key_id="kid"
    ).public_dict()
    assert shown["oauth_client_key"] == "…" and "PRIVATE" not in repr(shown)


@pytest.mark.parametrize(
    ("variable", "value", "options", "text"),
    [
        ("SEGMENT_HOST", "garbage", {"write_key": "k"}, "host must be an http"),
        ("SEGMENT_WRITE_KEY", "abc:def", {}, "write_key must not contain ':'"),
        ("SEGMENT_SPOOL_DIR", "   ", {"write_key": "k"}, "spool_dir"),
    ],
)
def test_a_bad_environment_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, options: Any, text: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        ValueError, match=f"^{text}.*\\(from the environment variable {variable}\\)$"
    ):
        Config.from_options(**options)
    # The same value given as the option: named as the option, as always.
    option = variable.removeprefix("SEGMENT_").lower()
    monkeypatch.delenv(variable)
    with pytest.raises(ValueError, match=f"^{text}") as raised:
        Config.from_options(**{**options, option: value})
    assert "environment" not in str(raised.value)


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("flush_interval", sys.maxsize, str(sys.maxsize)),
        ("upload_interval", 1e300, "1e+300"),
        ("shutdown_timeout", sys.maxsize, str(sys.maxsize)),
        ("timeout", 1e10, "10000000000.0"),
        ("timeout", (1, 10**400), str(10**400 + 1)),  # the sum of (connect, read)
        ("retry_after", 10**5000, "an integer of 16610 bits"),
        ("max_total_backoff_duration", MAX_SECONDS + 0.5, "2592000.5"),
        ("retry_backoff_max", 1e12, "1000000000000.0"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else "",
)
def test_seconds_past_30_days_are_refused_by_name(option: str, value: object, shown: str) -> None:
    # Thread waits and sockets refuse such values: a sender thread would die of one.
    with pytest.raises(
        ValueError,
        match=rf"^{option} must be at most 2592000 seconds \(30 days\), got {re.escape(shown)}$",
    ):
        Client("key", **{option: value})


def test_30_days_is_the_longest_wait_and_it_works(receiver: Receiver) -> None:
    month = float(MAX_SECONDS)
    client = Client(
        "key",
        host=receiver.url,
        flush_at=1,
        flush_interval=month,
        shutdown_timeout=month,
        timeout=month,
        retry_after=month,
        max_total_backoff_duration=month,
        retry_backoff_max=month,
    )
    client.track("u1", "First")
    receiver.wait_for_messages(1)  # the sender now waits flush_interval for more
    client.track("u1", "Second")
    assert [m["event"] for m in receiver.wait_for_messages(2)] == ["First", "Second"]
    assert client.flush() and client.shutdown()


def test_flush_and_shutdown_take_any_timeout(receiver: Receiver) -> None:
    client = Client("key", host=receiver.url)
    client.track("u1", "Waiting")
    assert client.flush(timeout=sys.maxsize)  # as good as for ever: it returns once sent
    assert client.flush(timeout=float("inf"))
    assert [m["event"] for m in receiver.messages()] == ["Waiting"]
    assert client.shutdown(timeout=1e300)


def test_backoff_bounds_in_the_wrong_order_are_shown_both() -> None:
    with pytest.raises(ValueError) as refused:
        Client("key", send=False, retry_backoff_min=100)
    assert str(refused.value) == (
        "retry_backoff_max must be at least retry_backoff_min, got retry_backoff_max=60.0 "
        "and retry_backoff_min=100 (60 and 0.5 unless given)"
    )


@pytest.mark.parametrize("nan", [float("nan"), decimal.Decimal("NaN"), decimal.Decimal("sNaN")])
def test_a_nan_timeout_is_refused_not_taken_for_no_wait(nan: object) -> None:
    client = Client("key", send=False)
    for method in (client.flush, client.shutdown):
        with pytest.raises(ValueError, match=r"^timeout must be a number of seconds or None, got"):
            method(nan)  # type: ignore[operator]
    assert client.shutdown(5)


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("http://pro xy:80", "must not contain spaces or control characters"),
        ("\x00", "must not contain spaces or control characters"),
        ("http://user:secret@proxy\n:80", "must not contain spaces or control characters"),
        ("http://pro%xy:80", "is not a proxy URL"),
    ],
)
def test_a_proxy_url_the_connection_pool_cannot_read_is_refused_by_name(
    proxy: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=f"^proxies: .* {problem}") as raised:
        Client("key", proxies={"https": proxy})
    assert "secret" not in str(raised.value)


#: A key file with the wrong content (a secret mounted from the wrong source).
PEM_WITHOUT_A_KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n"
OAUTH_IDS = {"oauth_client_id": "client-1", "oauth_key_id": "key-1"}


def test_an_oauth_key_is_parsed_with_the_other_options() -> None:
    # Checked where it is configured, not as the first batch is sent: an adapter's
    # start-up check and a Django system check refuse it too.
    with pytest.raises(ValueError, match=r"^oauth_client_key is not a PEM private key"):
        Config.from_options("key", oauth_client_key=PEM_WITHOUT_A_KEY, **OAUTH_IDS)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    not_rsa = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match=r"^oauth_client_key must be an RSA private key"):
        Config.from_options("key", oauth_client_key=not_rsa, **OAUTH_IDS)
    from tests.core.test_analytics_python_compat import _key_pair

    assert Config.from_options("key", oauth_client_key=_key_pair()[0], **OAUTH_IDS).oauth


def test_a_module_level_oauth_key_is_parsed_as_it_is_set() -> None:
    with pytest.raises(ValueError, match=r"^oauth_client_key is not a PEM private key"):
        check_option("oauth_client_key", PEM_WITHOUT_A_KEY)
    # Set one at a time: the id comes before the key, which is parsed when it comes.
    check_option("oauth_client_id", "client-1")
    check_option("oauth_client_key", "")  # from an unset variable: no key


def add_origin(message: dict[str, Any]) -> dict[str, Any]:
    message.setdefault("properties", {})["origin"] = "hook"
    return message


def fixed_message_id() -> str:
    return "message-from-a-hook"


def test_the_client_hooks_may_be_dotted_paths(receiver: Receiver) -> None:
    # As the web options' hooks are: settings files hold text.
    client = Client(
        "key",
        host=receiver.url,
        before_send="tests.core.test_config:add_origin",
        uid="tests.core.test_config.fixed_message_id",
        on_error="logging.exception",
    )
    assert client.config.before_send is add_origin and client.config.on_error is logging.exception
    client.track("u1", "Hooked")
    assert client.flush(timeout=10)
    [message] = receiver.messages()
    assert message["properties"] == {"origin": "hook"}
    assert message["messageId"] == "message-from-a-hook"
    client.shutdown(timeout=5)


class Scrubber:
    @staticmethod
    def scrub(message: dict[str, Any]) -> dict[str, Any]:
        return message


def test_a_hook_may_be_an_attribute_of_an_attribute_after_the_colon() -> None:
    # As entry points write one: a method of a class, a function of an object.
    client = Client("key", send=False, before_send="tests.core.test_config:Scrubber.scrub")
    assert client.config.before_send is Scrubber.scrub
    with pytest.raises(ValueError, match=r"cannot import 'tests.core.test_config:Scrubber.nope'"):
        Client("key", send=False, before_send="tests.core.test_config:Scrubber.nope")


@pytest.mark.parametrize(
    ("name", "path", "text"),
    [
        ("on_success", "tests.core.no_such_module:hook", "on_success: cannot import"),
        ("backoff", "tests.core.test_config:no_such_function", "backoff: cannot import"),
        ("now", "tests.core.test_config.OAUTH_IDS", "now: 'tests.core.test_config.OAUTH_IDS' is"),
        ("on_failure", ".hooks:failed", "on_failure: '.hooks:failed' is a relative path"),
    ],
)
def test_a_dotted_path_to_no_hook_is_refused_by_name(name: str, path: str, text: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(text)):
        Client("key", **{name: path})
