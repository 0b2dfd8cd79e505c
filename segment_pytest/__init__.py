"""The pytest plugin of segment-web, registered as ``segment_pytest``.

PYTEST_DONT_REWRITE

- ``segment_events``: every message clients send during the test, captured in
  memory as sent (nothing leaves the process).
- ``segment_collector``: a real local collector, one per session, reset before each
  test (needs the ``collector`` extra: ``pip install 'segment-web[collector]'``).

pytest loads this module in every run on a machine where the package is installed,
tests of Segment or not: it imports nothing of the library until a test asks for
one of its fixtures, so a run that never uses it pays nothing and meets none of
its dependencies. Its hooks only look whether the library was imported, and leave
the library's packages to Python's own import system (pytest does not rewrite them).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from segment_core.collector.handle import CollectorHandle

__all__ = ["COLLECTOR_EXTRA_HINT", "configured", "running", "segment_collector", "segment_events"]

#: The packages the distribution installs (pyproject.toml's wheel packages).
_DISTRIBUTION_PACKAGES = (
    "segment_core",
    "segment_django",
    "segment_flask",
    "segment_asgi",
    "segment_celery",
    "segment_rq",
    "segment_pytest",
)

#: How long a test that uses the collector waits for what earlier tests' clients
#: still hold for it (a loopback delivery takes milliseconds; a client retrying an
#: earlier test's faults may need a retry).
DELIVERY_WAIT_SECONDS = 2.0

#: The process that runs the tests of each session configured with this plugin,
#: innermost last: a session may run others in the same process (pytester's
#: in-process runs), or run its tests in children it forks (pytest-forked).
_running_in: list[int] = []
#: What the outbox held as each of those sessions started, innermost last: a session
#: run inside a test (pytester's) gives that test its outbox back as it ends.
_outboxes_before: list[list[dict[str, Any]]] = []
#: The lists ``segment_events`` fixtures capture into, while they are set up.
_fixture_sinks: list[list[dict[str, Any]]] = []


def configured() -> bool:
    """Whether a pytest session configured with this plugin is running, in any process."""
    return bool(_running_in)


def running() -> bool:
    """Whether pytest runs tests in this process (with this plugin loaded), not in a
    child it forked (a server a test started)."""
    return bool(_running_in) and _running_in[-1] == os.getpid()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # As the plugin is registered, on every pytest (pytest_addoption's own
    # pluginmanager is refused by pytest 5.1 and older, failing every run).
    _leave_packages_to_python(pluginmanager)


def _leave_packages_to_python(pluginmanager: pytest.PytestPluginManager) -> None:
    """pytest marks every package of a distribution with a plugin for assert
    rewriting; the library's hold no test asserts, so Python imports them itself:
    no re-compiling at each run, no files of pytest's beside them.

    Through pytest's private attributes (the same from 6.2 to 9); none of it
    without them (``--assert=plain``, another pytest)."""
    hook = getattr(pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    answered = getattr(hook, "_marked_for_rewrite_cache", None)
    if not isinstance(marked, set) or not isinstance(answered, dict):
        return
    marked.difference_update(_DISTRIBUTION_PACKAGES)
    for name in [name for name in answered if name.partition(".")[0] in _DISTRIBUTION_PACKAGES]:
        del answered[name]


def pytest_configure(config: pytest.Config) -> None:
    if "segment_core.scope" in sys.modules:
        # Work running as a session starts (the test around a pytester run) is no
        # test's of this session.
        from segment_core.testing import background_work_lives_on

        background_work_lives_on(frozenset())
    _running_in.append(os.getpid())
    _outboxes_before.append(list(_outbox()))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _running_in:  # only this session's: the one around it goes on
        _running_in.pop()
    if _outboxes_before:  # the test around it (pytester's) has its outbox back
        _outbox()[:] = _outboxes_before.pop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each test starts with an empty ``segment_core.testing.outbox``: before its fixtures."""
    _runs_tests_here()
    _wait_for_earlier_tests_threads(item)
    _empty_outbox()


def _wait_for_earlier_tests_threads(item: pytest.Item) -> None:
    """What earlier tests left running in the background is not this test's (see
    ``segment_core.testing.end_earlier_background_work``)."""
    if "segment_core.scope" not in sys.modules:  # no such work ever started
        return
    from segment_core.testing import end_earlier_background_work

    end_earlier_background_work(item.nodeid)


def _runs_tests_here() -> None:
    """This process runs a test: also a child forked to run it (pytest-forked), which
    configured no session. A server a test forks runs no test of its own."""
    if _running_in:  # else a session without this plugin's configure: none of ours
        _running_in[-1] = os.getpid()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, None, None]:
    # A fixture of a wider scope is set up during the setup of the first test that
    # needs it (or in its middle, through request.getfixturevalue): what it sent
    # belongs to no test, so it is not left to that one in the outbox and in
    # segment_events; what the test sent stays. (A capture() of the project's own
    # keeps what it captured.)
    kept = [(sink, len(sink)) for sink in _fixture_sinks]
    kept.append((_outbox(), len(_outbox())))
    scope = sys.modules.get("segment_core.scope")
    running = scope.bound_calls_now() if scope is not None else frozenset()
    yield
    if fixturedef.scope != "function":
        for messages, length in kept:
            del messages[length:]
        # Its start_thread work (a server) runs across tests: none waits for it.
        if "segment_core.scope" in sys.modules:
            from segment_core.testing import background_work_lives_on

            background_work_lives_on(running)


def _outbox() -> list[dict[str, Any]]:
    """``segment_core.testing.outbox``; an empty list while it was never imported."""
    testing = sys.modules.get("segment_core.testing")
    return [] if testing is None else testing.outbox


def _empty_outbox() -> None:
    _outbox().clear()


def __getattr__(name: str) -> Any:
    """Names of earlier releases, for ``segment_core.pytest_plugin``, which re-exports
    them, made on demand: the autouse fixture, outside this module's namespace, so
    that pytest does not give it to every project's tests (the hooks above do its
    work); the collector's hint, kept by the library, which this module imports only
    when asked."""
    if name == "COLLECTOR_EXTRA_HINT":
        from segment_core.collector import EXTRA_HINT

        return EXTRA_HINT
    if name != "_segment_empty_outbox":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    @pytest.fixture(autouse=True)
    def _segment_empty_outbox() -> None:
        _empty_outbox()

    return _segment_empty_outbox


@pytest.fixture
def segment_events() -> Iterator[list[dict[str, Any]]]:
    """Every message clients send during the test, captured in memory as sent (and
    what the test's fixtures set up before it sent to the test outbox)."""
    yield from captured_events()


def captured_events() -> Iterator[list[dict[str, Any]]]:
    """``segment_events``'s work, for the fixtures of both of its modules."""
    from segment_core.testing import capture

    with capture() as events:
        # What the test's own fixtures sent before this one was set up, whichever
        # order the test names them in (the outbox drops what wider ones sent); one
        # another thread sent as the capture began is in both, and counts once.
        captured = {message.get("messageId") for message in events}
        earlier = [
            copy.deepcopy(message)
            for message in list(_outbox())
            if message.get("messageId") not in captured
        ]
        events[:0] = earlier
        # Kept from the network by test mode, as the capture's own would be.
        events.held_back = getattr(events, "held_back", 0) + len(earlier)  # type: ignore[attr-defined]
        _fixture_sinks.append(events)
        try:
            yield events
        finally:
            _fixture_sinks[:] = [sink for sink in _fixture_sinks if sink is not events]


@pytest.fixture(scope="session")
def _segment_collector_session() -> Iterator[CollectorHandle]:
    """The session's one collector, shared by every test (internal: use `segment_collector`)."""
    yield from running_collector()


def running_collector() -> Iterator[CollectorHandle]:
    """``_segment_collector_session``'s work, for the fixtures of both of its modules."""
    try:
        from segment_core.collector import run_in_background
    except ImportError as error:  # names the extra to install
        missing: str | None = str(error)
    else:
        missing = None
    if missing is not None:  # failed outside the except block: no chained traceback
        pytest.fail(f"segment_collector: {missing}", pytrace=False)
    with run_in_background() as handle:
        yield handle
        # Before it stops: what clients still hold for it arrives, instead of
        # waiting out their shutdown_timeout at exit against a closed port.
        _deliver_pending(handle)


@pytest.fixture
def segment_collector(_segment_collector_session: CollectorHandle) -> CollectorHandle:
    """A running collector, emptied (events, counts, faults) before the test, once
    what earlier tests' clients still held for it has arrived."""
    return emptied_collector(_segment_collector_session)


def emptied_collector(collector: CollectorHandle) -> CollectorHandle:
    """``segment_collector``'s work, for the fixtures of both of its modules."""
    _deliver_pending(collector)
    collector.reset()
    return collector


def _deliver_pending(collector: CollectorHandle) -> None:
    """What clients still hold for ``collector`` arrives now (within a bound)."""
    from segment_core.testing import flush_clients_sending_to

    collector.clear_faults()  # an earlier test's: they would hold its clients back
    flush_clients_sending_to(collector.url, DELIVERY_WAIT_SECONDS)
