"""The pytest plugin in other people's test runs: loaded everywhere, felt nowhere.

Each test runs pytest in a child process on a small project of its own, as a
user's run on a machine where the package is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pluggy
import pytest

import segment_pytest
from segment_core.collector.handle import CollectorHandle

STRICT_INI = "[pytest]\nfilterwarnings =\n    error\n"
#: Other installed plugins are left out where warnings are errors: pytest-asyncio
#: warns about a setting these projects do not have.
QUIET = ("-p", "no:asyncio")


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name, text in files.items():
        (project / name).write_text(textwrap.dedent(text))
    return project


def _run(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Nothing of this run's pytest leaks into the child's; ``env`` is added.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SEGMENT"))}
    child_env.pop("DJANGO_SETTINGS_MODULE", None)
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_that_never_uses_it_imports_nothing_of_the_library(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_plain.py": """
                import sys


                def test_nothing_of_segment_web_is_imported(pytestconfig):
                    assert pytestconfig.pluginmanager.has_plugin("segment_pytest")
                    loaded = sorted(name for name in sys.modules if name.startswith("segment_"))
                    assert loaded == ["segment_pytest"], loaded
                    assert "requests" not in sys.modules
            """,
        },
    )
    result = _run(project, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUIET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_library_imported_before_pytest_starts_gets_no_warning(tmp_path: Path) -> None:
    # A runtests.py, or pytest-django's runner under manage.py test: the library is
    # imported first, then pytest.main(); warnings are errors in this project.
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "runtests.py": """
                import sys

                import pytest

                import segment_core
                import segment_core.testing

                sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:asyncio"]))
            """,
            "test_events.py": """
                from segment_core import Client


                def test_captured(segment_events):
                    Client("key").track("u1", "Signed Up")
                    assert [event["event"] for event in segment_events] == ["Signed Up"]
            """,
        },
    )
    result = _run(project, "runtests.py")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed" in output and "Warning" not in output


NO_PLUGIN = ("-p", "no:segment_pytest")
#: The ways a run leaves the plugin out: the events of the app's client stay in the
#: outbox all the same (pytest itself tells that tests run).
WITHOUT_THE_PLUGIN = {
    "-p no:segment_pytest": (NO_PLUGIN, {}),
    "autoload off": ((), {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}),
    "the fixtures' module alone": ((*NO_PLUGIN, "-p", "segment_core.pytest_plugin"), {}),
}
PLUGIN_RUNS = {"plugin loaded": ((), {}), **WITHOUT_THE_PLUGIN}


@pytest.mark.parametrize("plugin_args, plugin_env", PLUGIN_RUNS.values(), ids=PLUGIN_RUNS)
def test_a_django_project_under_plain_pytest_sends_nothing(
    tmp_path: Path, plugin_args: tuple[str, ...], plugin_env: dict[str, str]
) -> None:
    # No pytest-django: the project sets Django up in its conftest. Its events go to
    # the outbox, not to the (unreachable) host.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "settings.py": """
                SECRET_KEY = "x"
                INSTALLED_APPS = ["segment_django"]
                SEGMENT = {"WRITE_KEY": "a-real-key", "HOST": "http://127.0.0.1:9"}
            """,
            "conftest.py": """
                import os

                import django

                os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
                django.setup()

                import segment_core

                # As an app's ready() may: before pytest configured its session.
                segment_core.track("system", "App Booted")
            """,
            "test_django.py": """
                import segment_core
                from segment_core.testing import outbox


                def test_events_go_to_the_outbox():
                    segment_core.track("u1", "Signed Up")
                    # Without the plugin, nothing empties the outbox before a test.
                    assert [event["event"] for event in outbox][-1:] == ["Signed Up"]
                    assert segment_core.get_client().stats()["sent"] == 0
            """,
        },
    )
    result = _run(
        project,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django", *plugin_args),
        env=plugin_env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed" in output
    assert "undelivered" not in output and "cannot deliver" not in output


#: A Starlette app whose SegmentMiddleware builds its client, sending to the
#: collector of this (outer) run, and the test of a project that uses it.
STARLETTE_APP = """
    import os

    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from segment_asgi import SegmentMiddleware


    def home(request):
        request.state.analytics.track("Home Viewed")
        return HTMLResponse("<p>home</p>")


    def make_app():
        routes = [Route("/", home)]
        return SegmentMiddleware(
            Starlette(routes=routes), write_key="a-real-key", host=os.environ["COLLECTOR_URL"]
        )


    def visit(app):
        from starlette.testclient import TestClient

        with TestClient(app) as browser:
            assert browser.get("/").status_code == 200
        assert app.client.flush(timeout=10)
"""
STARLETTE_TEST = """
    from segment_core.testing import outbox

    from app import make_app, visit


    def test_events_go_to_the_outbox():
        visit(make_app())
        assert [m.get("event", m["type"]) for m in outbox] == ["Home Viewed", "page"]
"""


def _passing_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run pytest on ``project``; its output, once passed."""
    result = _run(
        project,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args),
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _pytest(
    project: Path, collector: CollectorHandle, *args: str, env: dict[str, str] | None = None
) -> str:
    """Run pytest on ``project``, whose apps send to ``collector``; its output, once passed."""
    return _passing_pytest(project, *args, env={"COLLECTOR_URL": collector.url, **(env or {})})


@pytest.mark.parametrize(
    "plugin_args, plugin_env", WITHOUT_THE_PLUGIN.values(), ids=WITHOUT_THE_PLUGIN
)
def test_without_the_plugin_an_asgi_app_under_pytest_sends_nothing(
    tmp_path: Path,
    segment_collector: CollectorHandle,
    plugin_args: tuple[str, ...],
    plugin_env: dict[str, str],
) -> None:
    project = _project(
        tmp_path,
        {"pytest.ini": "[pytest]\n", "app.py": STARLETTE_APP, "test_app.py": STARLETTE_TEST},
    )
    output = _pytest(project, segment_collector, *plugin_args, env=plugin_env)
    assert "1 passed" in output
    assert segment_collector.summary()["total"] == 0


def test_without_the_plugin_a_server_a_test_forks_still_sends(
    tmp_path: Path, segment_collector: CollectorHandle
) -> None:
    # The child runs no tests: it serves, as a server started with multiprocessing does.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "app.py": STARLETTE_APP,
            "test_fork.py": """
                import os

                from app import make_app, visit


                def test_the_forked_server_sends():
                    child = os.fork()
                    if child == 0:
                        status = 1
                        try:
                            visit(make_app())
                            status = 0
                        finally:
                            os._exit(status)
                    assert os.waitpid(child, 0)[1] == 0
            """,
        },
    )
    assert "1 passed" in _pytest(project, segment_collector, *NO_PLUGIN)
    events = segment_collector.wait_for(2)
    sent = sorted(event["message"].get("event", event["message"]["type"]) for event in events)
    assert sent == ["Home Viewed", "page"]


def test_without_the_plugin_a_server_a_test_starts_with_multiprocessing_still_sends(
    tmp_path: Path, segment_collector: CollectorHandle
) -> None:
    # The child imports the app (and the library) itself, as `uvicorn app:app` would.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "app.py": STARLETTE_APP,
            "test_fork.py": """
                import multiprocessing


                def serve():
                    from app import make_app, visit

                    visit(make_app())


                def test_the_server_sends():
                    process = multiprocessing.get_context("fork").Process(target=serve)
                    process.start()
                    process.join(60)
                    assert process.exitcode == 0
            """,
        },
    )
    assert "1 passed" in _pytest(project, segment_collector, *NO_PLUGIN)
    events = segment_collector.wait_for(2)
    sent = sorted(event["message"].get("event", event["message"]["type"]) for event in events)
    assert sent == ["Home Viewed", "page"]


#: Runs each test in a child process of its own, as pytest-forked (``--forked``)
#: does: the child runs the test's protocol and hands its reports to the parent.
FORKING_CONFTEST = """
    import os
    import pickle

    import pytest
    from _pytest.runner import runtestprotocol


    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(item):
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:
            status = 1
            try:
                os.close(reading)
                reports = [
                    item.config.hook.pytest_report_to_serializable(config=item.config, report=r)
                    for r in runtestprotocol(item, log=False)
                ]
                with os.fdopen(writing, "wb") as pipe:
                    pickle.dump(reports, pipe)
                status = 0
            finally:
                os._exit(status)
        os.close(writing)
        with os.fdopen(reading, "rb") as pipe:
            reports = pickle.load(pipe)
        assert os.waitpid(child, 0)[1] == 0
        for data in reports:
            report = item.config.hook.pytest_report_from_serializable(config=item.config, data=data)
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True
"""


def test_tests_run_in_forked_children_send_nothing_and_their_servers_still_send(
    tmp_path: Path, segment_collector: CollectorHandle
) -> None:
    # Each child runs a test: its app's events go to the outbox. The server the
    # second test forks runs none: its events reach the collector.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": FORKING_CONFTEST,
            "app.py": STARLETTE_APP,
            "test_1_app.py": STARLETTE_TEST,
            "test_2_fork.py": """
                import os

                from app import make_app, visit


                def test_the_forked_server_sends():
                    child = os.fork()
                    if child == 0:
                        status = 1
                        try:
                            visit(make_app())
                            status = 0
                        finally:
                            os._exit(status)
                    assert os.waitpid(child, 0)[1] == 0
            """,
        },
    )
    assert "2 passed" in _pytest(project, segment_collector)
    events = segment_collector.wait_for(2)
    sent = sorted(event["message"].get("event", event["message"]["type"]) for event in events)
    assert sent == ["Home Viewed", "page"]


def test_a_session_run_inside_the_session_leaves_test_mode_on(
    tmp_path: Path, segment_collector: CollectorHandle
) -> None:
    # A plugin's own tests run pytest in this very process (pytester); the tests
    # after them still keep their events.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": 'pytest_plugins = ["pytester"]\n',
            "app.py": STARLETTE_APP,
            "test_0_inner_run.py": """
                def test_an_inner_run(pytester):
                    pytester.makepyfile("def test_ok(): pass")
                    pytester.runpytest_inprocess("-p", "no:randomly").assert_outcomes(passed=1)
            """,
            "test_1_app.py": STARLETTE_TEST,
        },
    )
    assert "2 passed" in _pytest(project, segment_collector)
    assert segment_collector.summary()["total"] == 0


def test_the_collector_shows_each_test_only_its_own_events(tmp_path: Path) -> None:
    # test_a's client holds its event (flush_interval) as test_b starts; test_b then
    # makes it send: had it not arrived before the reset, test_b would see it.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "test_collector.py": """
                from segment_core import Client

                clients = []


                def test_a(segment_collector):
                    client = Client("key-a", host=segment_collector.url, flush_interval=60)
                    clients.append(client)
                    client.track("user-a", "Test A Event")


                def test_b(segment_collector):
                    [earlier] = clients
                    assert earlier.flush(timeout=10)
                    client = Client("key-b", host=segment_collector.url)
                    client.track("user-b", "Test B Event")
                    assert client.flush(timeout=10)
                    seen = [e["message"]["event"] for e in segment_collector.events()]
                    assert seen == ["Test B Event"], seen
            """,
        },
    )
    _passing_pytest(project)


def test_segment_events_holds_what_the_tests_fixtures_sent_whatever_their_order(
    tmp_path: Path,
) -> None:
    # What the outbox holds as it is set up: a function-scoped fixture is part of
    # the test; one of a wider scope is not.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "test_order.py": """
                import pytest
                from segment_core import Client
                from segment_core.testing import capture, divert

                client = Client("key", send=False)
                divert(client)  # as an adapter's client is under pytest


                @pytest.fixture(scope="module")
                def shop():
                    client.track("admin", "Shop Opened")


                @pytest.fixture
                def signed_up(shop):
                    client.identify("u1", {"plan": "pro"})


                @pytest.fixture
                def broken():
                    raise RuntimeError("a fixture that fails")


                def test_listed_first(signed_up, segment_events):
                    client.track("u1", "Bought")
                    assert [e["type"] for e in segment_events] == ["identify", "track"]


                def test_listed_last(segment_events, signed_up):
                    client.track("u1", "Bought")
                    assert [e["type"] for e in segment_events] == ["identify", "track"]


                def test_a_fixture_fails_first(broken, segment_events):
                    pass


                def test_no_capture_is_left_running():
                    with capture() as events:
                        client.track("u1", "Alone")
                    from segment_core import _capture
                    assert _capture.sinks == []
                    assert len(events) == 1
            """,
        },
    )
    result = _run(project, "-m", "pytest", "-q", "-p", "no:randomly")
    assert "3 passed, 1 error" in result.stdout, result.stdout + result.stderr


def test_what_an_earlier_tests_background_work_sends_is_in_no_later_tests_events(
    tmp_path: Path,
) -> None:
    # A view's start_thread work (a receipt sent after the response) still runs as the
    # test ends: it belongs to that test, not to the next one's outbox or capture.
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_background.py": """
                import threading

                import pytest

                from segment_core import Client
                from segment_core.scope import start_thread
                from segment_core.testing import divert, outbox

                client = Client("key")
                divert(client)  # as the adapters' clients are in tests
                work_done = threading.Event()


                def send_receipt():
                    threading.Event().wait(0.5)  # the work takes a while
                    client.track("user-a", "Receipt Sent")
                    work_done.set()


                @pytest.fixture(scope="module")
                def server():  # a fixture's own work, which no test waits for
                    stop = threading.Event()
                    start_thread(stop.wait, 60)
                    yield
                    stop.set()


                @pytest.fixture
                def signed_up():  # a test's own fixture: its work is the test's
                    start_thread(send_receipt)


                def test_a(server, signed_up):
                    pass


                def test_b(server, segment_events):
                    assert work_done.is_set()
                    client.track("user-b", "Test B Event")
                    assert [m["event"] for m in outbox] == ["Test B Event"]
                    assert [m["event"] for m in segment_events] == ["Test B Event"]
            """,
        },
    )
    # -rA shows each test's captured log: the fixture's work was waited for by none.
    output = _passing_pytest(project, *QUIET, "-rA")
    assert "Captured log" not in output and "still runs" not in output, output


def test_a_batch_waiting_to_retry_after_a_planned_fault_arrives_before_the_next_test(
    tmp_path: Path,
) -> None:
    # test_a plans a 429 asking for a 30 s wait: its client's batch waits to retry as
    # test_b starts. The fault cleared, it is sent at once, before the reset.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "test_collector.py": """
                import time

                from segment_core import Client

                clients = []


                def test_a(segment_collector):
                    client = Client("key-a", host=segment_collector.url)
                    clients.append(client)
                    segment_collector.faults({"status": 429, "retry_after": 30, "count": 1})
                    client.track("user-a", "Test A Event")
                    assert not client.flush(timeout=0.5)


                def test_b(segment_collector):
                    started = time.monotonic()
                    [client] = clients
                    client.track("user-b", "Test B Event")
                    assert client.flush(timeout=10)
                    assert time.monotonic() - started < 10
                    seen = [e["message"]["event"] for e in segment_collector.events()]
                    assert seen == ["Test B Event"], seen
            """,
        },
    )
    _passing_pytest(project)


@pytest.mark.parametrize("last", [False, True], ids=["next test", "end of the session"])
def test_a_request_a_planned_delay_holds_arrives_before_the_next_test(
    tmp_path: Path, last: bool
) -> None:
    # test_a plans a long delay: its client's request is held as test_a ends. The
    # plans cleared, the collector answers it at once: test_b sees only its own
    # event, and the session's end waits neither for the delay nor on a closed port.
    second = """


        def test_b(segment_collector):
            [client] = clients
            client.track("user-b", "Test B Event")
            assert client.flush(timeout=10)
            seen = [e["message"]["event"] for e in segment_collector.events()]
            assert seen == ["Test B Event"], seen
    """
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "test_collector.py": """
                from segment_core import Client

                clients = []


                def test_a(segment_collector):
                    client = Client("key-a", host=segment_collector.url, shutdown_timeout=30)
                    clients.append(client)
                    segment_collector.faults({"delay": 60})
                    client.track("user-a", "Test A Event")
                    assert not client.flush(timeout=0.5)
            """
            + ("" if last else textwrap.indent(textwrap.dedent(second), " " * 16)),
        },
    )
    started = time.monotonic()
    _passing_pytest(project)
    assert time.monotonic() - started < 30, "a held request outlived its test"


def test_the_collector_stops_once_clients_delivered_to_it(tmp_path: Path) -> None:
    # The last test does not wait for delivery: the collector is still there for it
    # as the session ends, and the process exits without waiting for a closed port.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": """
                from pathlib import Path

                clients = []


                def pytest_unconfigure(config):
                    # After the session's fixtures, the collector's included, are gone.
                    [client] = clients
                    Path("delivered").write_text(str(client.stats()["sent"]))
            """,
            "test_last.py": """
                from conftest import clients
                from segment_core import Client


                def test_send(segment_collector):
                    client = Client(
                        "key", host=segment_collector.url, flush_interval=60, shutdown_timeout=20
                    )
                    clients.append(client)
                    client.track("u1", "Signed Up")
            """,
        },
    )
    started = time.monotonic()
    _passing_pytest(project)
    assert (project / "delivered").read_text() == "1"
    assert time.monotonic() - started < 15, "the exit waited for an undeliverable message"


def _installed_from_the_wheel(tmp_path: Path) -> dict[str, str]:
    """An environment where the package is installed as from its wheel, as pytest
    reads it: a distribution listing the packages' files, with the plugin's entry
    point (this checkout's editable install lists none of them)."""
    site = tmp_path / "site"
    record = site / "segment_web-0.1.0.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text("Metadata-Version: 2.1\nName: segment-web\nVersion: 0.1.0\n")
    (record / "entry_points.txt").write_text("[pytest11]\nsegment_pytest = segment_pytest\n")
    files = [
        path.relative_to(ROOT).as_posix()
        for package in segment_pytest._DISTRIBUTION_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]
    (record / "RECORD").write_text("".join(f"{name},,\n" for name in files))
    return {"PYTHONPATH": str(site)}


ROOT = Path(__file__).resolve().parents[2]


def test_the_plugin_knows_the_packages_the_wheel_installs() -> None:
    tomllib = pytest.importorskip("tomllib")
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert tuple(build["targets"]["wheel"]["packages"]) == segment_pytest._DISTRIBUTION_PACKAGES


def test_pytest_leaves_the_installed_library_to_python_s_import_system(tmp_path: Path) -> None:
    # pytest would otherwise rewrite (re-compile) each module of the library at each
    # run, and leave files of its own beside them.
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_imports.py": """
                import sys

                from _pytest.assertion.rewrite import AssertionRewritingHook


                def test_imported_by_python():
                    import segment_core.testing
                    import segment_core.web

                    by_pytest = sorted(
                        name
                        for name, module in sys.modules.items()
                        if name.startswith("segment_")
                        and isinstance(getattr(module, "__loader__", None), AssertionRewritingHook)
                    )
                    assert by_pytest == ["segment_pytest"]  # imported before its hook ran
            """,
        },
    )
    env = _installed_from_the_wheel(tmp_path)
    result = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUIET, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_a_project_plugin_module_named_segment_still_loads(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "segment.py": """
                import pytest


                @pytest.fixture
                def tracker():
                    return "the project's own"
            """,
            "conftest.py": 'pytest_plugins = ["segment"]\n',
            "test_own_plugin.py": """
                def test_its_fixture(tracker, pytestconfig):
                    assert tracker == "the project's own"
                    assert pytestconfig.pluginmanager.has_plugin("segment_pytest")
            """,
        },
    )
    result = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUIET)
    assert result.returncode == 0, result.stdout + result.stderr


def test_other_projects_tests_get_no_fixture_of_it(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_plain.py": """
                def test_fixtures(request):
                    mine = [name for name in request.fixturenames if "segment" in name]
                    assert mine == [], request.fixturenames
            """,
        },
    )
    result = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--setup-show", *QUIET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "segment" not in result.stdout


#: Tests that each see the outbox empty as they start, whatever ran before them (a
#: wider fixture's set-up included); the second takes its fixture's events.
EMPTIED_OUTBOX_TESTS = """
    import pytest

    from segment_core import Client
    from segment_core.testing import divert, outbox

    client = Client("key")
    divert(client)


    @pytest.fixture(scope="module")
    def shop():
        client.track("setup", "Shop Opened")


    @pytest.fixture
    def signed_in():
        client.identify("u1")


    def test_first(shop):
        assert outbox == []
        client.track("u1", "Left Over")


    def test_second(shop, signed_in):
        assert [message["type"] for message in outbox] == ["identify"]
"""


@pytest.mark.parametrize(
    "plugin_args",
    [(), (*NO_PLUGIN, "-p", "segment_core.pytest_plugin")],
    ids=["plugin", "the fixtures' module alone"],
)
def test_each_test_starts_with_an_empty_outbox(
    tmp_path: Path, plugin_args: tuple[str, ...]
) -> None:
    project = _project(tmp_path, {"pytest.ini": STRICT_INI, "test_outbox.py": EMPTIED_OUTBOX_TESTS})
    result = _run(
        project,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *QUIET,
        *plugin_args,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_wider_fixture_set_up_during_a_test_leaves_the_test_its_events(
    tmp_path: Path,
) -> None:
    # Only what the fixture sent is no test's: what the test sent before and after stays.
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_outbox.py": """
                import pytest

                from segment_core import Client
                from segment_core.testing import divert, outbox

                client = Client("key")
                divert(client)


                @pytest.fixture(scope="module")
                def catalog():
                    client.track("setup", "Catalog Loaded")


                def test_set_up_in_its_middle(request):
                    client.track("u1", "Searched")
                    request.getfixturevalue("catalog")
                    client.track("u1", "Viewed Catalog")
                    sent = [message["event"] for message in outbox]
                    assert sent == ["Searched", "Viewed Catalog"]


                @pytest.fixture(scope="module")
                def prices():
                    client.track("setup", "Prices Loaded")


                def test_its_capture_too(request, segment_events):
                    client.track("u1", "Searched")
                    request.getfixturevalue("prices")
                    client.track("u1", "Viewed Catalog")
                    sent = [message["event"] for message in segment_events]
                    assert sent == ["Searched", "Viewed Catalog"]
            """,
        },
    )
    assert "2 passed" in _passing_pytest(project, "-p", "no:randomly", *QUIET)


def test_a_project_module_named_like_the_plugin_leaves_adapters_working(tmp_path: Path) -> None:
    # The project's module takes the plugin's name: events still stay in the outbox.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\npythonpath = .\n",
            "segment_pytest.py": "HELPERS = True\n",
            "conftest.py": 'pytest_plugins = ["segment_pytest"]\n',
            "test_app.py": """
                from starlette.applications import Starlette
                from starlette.responses import HTMLResponse
                from starlette.routing import Route
                from starlette.testclient import TestClient

                from segment_asgi import SegmentMiddleware
                from segment_core.testing import outbox


                def home(request):
                    request.state.analytics.track("Viewed")
                    return HTMLResponse("<p>hi</p>")


                def test_the_app_runs():
                    app = Starlette(routes=[Route("/", home)])
                    app.add_middleware(
                        SegmentMiddleware, write_key="k", host="http://127.0.0.1:9"
                    )
                    with TestClient(app) as client:
                        assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
                    assert [m["type"] for m in outbox] == ["track", "page"]
            """,
        },
    )
    assert "1 passed" in _passing_pytest(project, *QUIET)


def test_a_capture_of_the_project_s_own_keeps_what_its_fixtures_sent(tmp_path: Path) -> None:
    # A session-wide audit list: the plugin trims only its own segment_events and the
    # outbox of what a wider fixture sent.
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_audit.py": """
                import pytest

                from segment_core import Client
                from segment_core.testing import capture


                @pytest.fixture(scope="session")
                def audit_log():
                    with capture() as events:
                        yield events


                @pytest.fixture(scope="session")
                def client():
                    client = Client("key", send=False)
                    yield client
                    client.shutdown()


                @pytest.fixture(scope="module")
                def seeded_user(client, audit_log):
                    client.identify("seed-user", {"plan": "pro"})
                    return "seed-user"


                def test_seeded(seeded_user, audit_log, client, segment_events):
                    client.track(seeded_user, "Test Event")
                    assert [m["type"] for m in audit_log] == ["identify", "track"]
                    assert [m["type"] for m in segment_events] == ["track"]
            """,
        },
    )
    assert "1 passed" in _passing_pytest(project, *QUIET)


@pytest.mark.parametrize(
    "load_both",
    [
        ("-p", "segment_core.pytest_plugin"),
        ("-o", "pythonpath=."),  # with the conftest below
    ],
    ids=["command line", "pytest_plugins"],
)
def test_both_of_the_fixtures_modules_loaded_are_listed_by_fixtures(
    tmp_path: Path, load_both: tuple[str, ...]
) -> None:
    files = {"pytest.ini": "[pytest]\n", "test_it.py": "def test_it(segment_events): pass\n"}
    if load_both[0] == "-o":
        files["conftest.py"] = 'pytest_plugins = ["segment_core.pytest_plugin"]\n'
    project = _project(tmp_path, files)
    output = _passing_pytest(project, *QUIET, *load_both, "--fixtures")
    assert "INTERNALERROR" not in output
    assert "segment_events" in output
    assert "1 passed" in _passing_pytest(project, *QUIET, *load_both)


def test_an_inner_run_leaves_the_test_around_it_its_outbox(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": 'pytest_plugins = ["pytester"]\n',
            "test_outer.py": """
                from segment_core import Client
                from segment_core.testing import divert, outbox


                def test_outer(pytester):
                    client = Client("key")
                    divert(client)
                    client.track("u1", "Outer")
                    pytester.makepyfile(
                        test_inner="from segment_core import Client\\n"
                        "from segment_core.testing import divert, outbox\\n"
                        "def test_inner():\\n"
                        "    client = Client('key')\\n"
                        "    divert(client)\\n"
                        "    client.track('u2', 'Inner')\\n"
                        "    assert [m['event'] for m in outbox] == ['Inner']\\n"
                    )
                    inner = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:asyncio")
                    inner.assert_outcomes(passed=1)
                    assert [m["event"] for m in outbox] == ["Outer"]
            """,
        },
    )
    assert "1 passed" in _passing_pytest(project, *QUIET)


class _OldestHookSpecs:
    """The hooks the plugin implements, as pytest 4.6 to 5.1 declare them: there,
    ``pytest_addoption`` takes its ``parser`` alone."""

    @pluggy.HookspecMarker("pytest")(historic=True)
    def pytest_addoption(self, parser: object) -> None: ...

    @pluggy.HookspecMarker("pytest")(historic=True)
    def pytest_addhooks(self, pluginmanager: object) -> None: ...

    @pluggy.HookspecMarker("pytest")(historic=True)
    def pytest_configure(self, config: object) -> None: ...

    @pluggy.HookspecMarker("pytest")
    def pytest_unconfigure(self, config: object) -> None: ...

    @pluggy.HookspecMarker("pytest")
    def pytest_runtest_setup(self, item: object) -> None: ...

    @pluggy.HookspecMarker("pytest")(firstresult=True)
    def pytest_fixture_setup(self, fixturedef: object, request: object) -> object: ...


class _PytestsWay(pluggy.PluginManager):
    """Takes a plugin's functions named ``pytest_*`` for hooks, marked or not, as
    pytest's own plugin manager does."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("pytest_") and callable(getattr(plugin, name)):
            return {
                "wrapper": False,
                "hookwrapper": False,
                "optionalhook": False,
                "tryfirst": False,
                "trylast": False,
                "specname": None,
            }
        return opts


def test_the_plugin_asks_the_hooks_of_old_pytest_for_nothing_they_lack() -> None:
    # Installed, the plugin loads in every pytest run of the machine: a hook argument
    # an older pytest does not have would fail every one of them, --version too.
    manager = _PytestsWay("pytest")
    manager.add_hookspecs(_OldestHookSpecs)
    manager.register(segment_pytest)
    manager.check_pending()  # no hook of the plugin's left without its spec
    implemented = {name for name in dir(segment_pytest) if name.startswith("pytest_")}
    assert implemented <= set(vars(_OldestHookSpecs)), implemented
