"""Setting SegmentCelery up: where its client comes from, and mistakes it reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import celery
import pytest
from celery import Celery
from flask import Flask

import segment_core
from segment_celery import SegmentCelery
from segment_core import Client


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    app = Celery("setup-tests", broker="memory://", set_as_current=False)
    yield app
    app.close()


@pytest.fixture(autouse=True)
def _keep_the_default_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(segment_core, "default_client", None)
    yield
    if segment_core.default_client is not None:
        segment_core.default_client.shutdown(timeout=1)


def test_keyword_options_build_a_client_that_becomes_the_default(celery_app: Celery) -> None:
    segment = SegmentCelery(celery_app, write_key="celery-key", host="http://127.0.0.1:9")
    client = segment.client
    assert client.config.write_key == "celery-key"
    assert client.config.host == "http://127.0.0.1:9"
    assert segment.client is client
    assert segment_core.default_client is client


def test_config_keys_build_the_client_and_keywords_win(celery_app: Celery) -> None:
    celery_app.conf.update(segment_write_key="from-config", segment_flush_at=7)
    segment = SegmentCelery(flush_at=3)
    segment.init_app(celery_app)
    assert segment.client.config.write_key == "from-config"
    assert segment.client.config.flush_at == 3


@pytest.mark.parametrize(
    ("key", "keyword"),
    [("segment_upload_size", "max_batch_size"), ("segment_max_batch_size", "upload_size")],
)
def test_a_keyword_wins_over_a_config_key_of_another_name_of_its_option(
    celery_app: Celery, key: str, keyword: str
) -> None:
    celery_app.conf.update(segment_write_key="from-config", **{key: 5})
    segment = SegmentCelery(**{keyword: 10})
    segment.init_app(celery_app)
    assert segment.client.config.max_batch_size == 10


def test_under_a_namespace_its_spelling_builds_the_client_and_wins(celery_app: Celery) -> None:
    """``config_from_object(settings, namespace="CELERY")``, as with Django: keys are
    ``CELERY_SEGMENT_<OPTION>``, as Celery's own are ``CELERY_<SETTING>``."""

    class Settings:
        CELERY_SEGMENT_WRITE_KEY = "from-the-namespace"
        CELERY_SEGMENT_FLUSH_AT = 7
        segment_flush_at = 3
        segment_max_queue_size = 77

    celery_app.config_from_object(Settings, namespace="CELERY")
    config = SegmentCelery(celery_app).client.config
    assert (config.write_key, config.flush_at, config.max_queue_size) == (
        "from-the-namespace",
        7,
        77,
    )


def test_a_lower_case_namespace_reads_lower_case_keys() -> None:
    app = Celery("setup-tests", broker="memory://", set_as_current=False, namespace="celery")
    try:
        app.conf.update(celery_segment_write_key="lower-namespace", celery_segment_flush_at=5)
        config = SegmentCelery(app).client.config
        assert (config.write_key, config.flush_at) == ("lower-namespace", 5)
    finally:
        app.close()


def test_a_bad_namespaced_key_is_reported_and_tasks_use_the_default_client(
    celery_app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    class Settings:
        CELERY_SEGMENT_WRITE_KEY = "from-the-namespace"
        CELERY_SEGMENT_FLUSHAT = 7

    celery_app.config_from_object(Settings, namespace="CELERY")
    segment = SegmentCelery(celery_app)
    with pytest.raises(ValueError, match=r"'CELERY_SEGMENT_FLUSHAT'.*did you mean 'flush_at'"):
        _ = segment.client
    assert segment._task_client() is None
    assert "CELERY_SEGMENT_FLUSHAT" in caplog.text


@pytest.mark.parametrize(
    ("namespace", "keys", "named"),
    [
        (None, {"segment_host": "api.segment.io"}, "Celery config 'segment_host': host must be"),
        (
            "CELERY",
            {"CELERY_SEGMENT_WRITE_KEY": "a key", "CELERY_SEGMENT_HOST": "https://x.example"},
            "Celery config 'CELERY_SEGMENT_WRITE_KEY': write_key must not contain spaces",
        ),
        # analytics-python's name of an option: the key that used it.
        (None, {"segment_upload_interval": -1}, "Celery config 'segment_upload_interval': "),
        (
            None,
            {"segment_write_key": "k", "segment_send_in_tests": "maybe"},
            "Celery config 'segment_send_in_tests': send_in_tests must be",
        ),
    ],
)
def test_a_bad_value_of_a_key_names_the_key(
    celery_app: Celery,
    caplog: pytest.LogCaptureFixture,
    namespace: str | None,
    keys: dict[str, object],
    named: str,
) -> None:
    """As a misnamed key is: not the option alone, which the environment also sets."""

    class Settings:
        pass

    for key, value in keys.items():
        setattr(Settings, key, value)
    celery_app.config_from_object(Settings, namespace=namespace)
    segment = SegmentCelery(celery_app)
    with pytest.raises(ValueError) as refused:
        _ = segment.client
    assert str(refused.value).startswith(named), refused.value
    assert segment._task_client() is None
    assert named in caplog.text


def test_without_options_the_default_client_is_used(celery_app: Celery) -> None:
    default = Client("default-key")
    segment_core.default_client = default
    assert SegmentCelery(celery_app).client is default


def test_options_without_a_write_key_take_the_module_level_ones(
    celery_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """analytics-python's ``analytics.write_key = ...``, kept after changing the import."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", "http://127.0.0.1:9")
    segment = SegmentCelery(celery_app, flush_at=3)
    config = segment.client.config
    assert (config.write_key, config.host, config.flush_at) == (
        "module-key",
        "http://127.0.0.1:9",
        3,
    )
    assert segment_core.default_client is segment.client


def test_a_client_without_a_write_key_serves_the_module_level_calls_until_one_is_set(
    celery_app: Celery, monkeypatch: pytest.MonkeyPatch, segment_collector: Any
) -> None:
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.setattr(segment_core, "write_key", None)
    monkeypatch.setattr(segment_core, "_keyless_client", None)
    segment = SegmentCelery(celery_app, flush_at=3)
    assert segment.client.config.write_key is None
    assert segment_core.get_client() is segment.client
    assert segment_core.default_client is None
    # Set later (a worker's start-up): the module-level calls send with it.
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", segment_collector.url)
    assert segment_core.track("user-1", "Nightly Export")[0]
    assert segment_core.flush(10)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Nightly Export"]


def test_a_given_client_is_used(celery_app: Celery) -> None:
    mine = Client("mine")
    try:
        assert SegmentCelery(celery_app, client=mine).client is mine
    finally:
        mine.shutdown(timeout=1)


def test_mistakes_name_what_is_wrong(celery_app: Celery) -> None:
    with pytest.raises(TypeError, match="unknown option 'flush_att'; did you mean 'flush_at'"):
        SegmentCelery(celery_app, flush_att=3)
    with pytest.raises(TypeError, match=r"client must be a segment_core\.Client"):
        SegmentCelery(celery_app, client="key")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        SegmentCelery(celery_app, client=Client(send=False), flush_at=3)
    # A bad value is refused as the app is set up, not at the first task.
    with pytest.raises(ValueError, match="flush_at must be between 1 and 2500, got 0"):
        SegmentCelery(celery_app, write_key="k", flush_at=0)
    with pytest.raises(ValueError, match="write_key"):
        SegmentCelery(celery_app, write_key="k\n", flush_at=3)
    # The web app given for the Celery app (Flask's pattern holds both): refused
    # where it is made, not a task that runs without its visitor.
    flask_app = Flask(__name__)
    with pytest.raises(TypeError, match=r"needs the celery\.Celery app, got flask\.app\.Flask"):
        SegmentCelery(flask_app)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got builtins\.str"):
        SegmentCelery().init_app("tasks")  # type: ignore[arg-type]
    SegmentCelery(celery_app)
    with pytest.raises(RuntimeError, match="already set up"):
        SegmentCelery(celery_app)


def test_current_app_sets_up_the_app_it_stands_for(celery_app: Celery) -> None:
    celery_app.set_current()
    extension = SegmentCelery(celery.current_app, client=Client(send=False))
    assert repr(extension) == f"<SegmentCelery apps={[celery_app.main]!r}>"


def test_options_checked_at_set_up_leave_the_others_to_the_configuration(
    celery_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What only the options together, or the environment, decide waits for the client."""
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "from-a-file\n")
    celery_app.conf.update(segment_write_key="k", segment_retry_backoff_max=120, segment_send=False)
    segment = SegmentCelery(celery_app, retry_backoff_min=90)
    client = segment.client
    try:
        assert client.config.write_key == "k"
        assert (client.config.retry_backoff_min, client.config.retry_backoff_max) == (90, 120)
    finally:
        client.shutdown(timeout=1)


def test_a_bad_config_key_is_reported_and_tasks_use_the_default_client(
    celery_app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    celery_app.conf.update(segment_flush_att=3)
    segment = SegmentCelery(celery_app)
    with pytest.raises(ValueError, match=r"'segment_flush_att'.*did you mean 'flush_at'"):
        _ = segment.client
    assert segment._task_client() is None
    assert "segment_flush_att" in caplog.text


def test_upper_case_settings_are_not_client_options(celery_app: Celery) -> None:
    """Celery's Django namespace shows every Django setting: SEGMENT_JS_URL is not ours."""
    celery_app.conf.update(SEGMENT_JS_URL="https://cdn.example/a.js")
    default = Client("default-key")
    segment_core.default_client = default
    assert SegmentCelery(celery_app).client is default


@pytest.mark.slow
def test_keyword_options_make_the_default_client_of_a_process_that_only_publishes(
    redis_db: str, segment_collector: Any
) -> None:
    """A web app or a script that publishes tasks never runs one: the client is built
    by SegmentCelery itself, not by the first task."""
    app = Celery("publisher-only", broker=redis_db, set_as_current=False)
    try:
        segment = SegmentCelery(
            app, write_key="celery-key", host=segment_collector.url, send_in_tests=True
        )
        assert segment_core.track("user-1", "Signed Up")[0]
        assert segment_core.flush(10)
        [event] = segment_collector.wait_for(1, timeout=10, event="Signed Up")
        assert event["message"]["userId"] == "user-1"
        assert segment_core.default_client is segment.client
    finally:
        app.close()


def test_setting_up_leaves_celerys_configuration_to_load_when_it_would(
    celery_app: Celery,
) -> None:
    # Celery's own recipe for periodic tasks connects to on_after_configure after the
    # extensions are set up: loading the configuration early would skip it.
    fired: list[bool] = []
    SegmentCelery(celery_app)

    @celery_app.on_after_configure.connect
    def setup_periodic_tasks(sender: Any, **kwargs: Any) -> None:
        fired.append(True)

    class Config:
        segment_write_key = "from-config"
        segment_send = False

    celery_app.config_from_object(Config)  # after init_app: still read
    assert celery_app.conf.segment_write_key == "from-config"
    assert fired == [True]
    client = segment_core.get_client()
    assert client.config.write_key == "from-config"
