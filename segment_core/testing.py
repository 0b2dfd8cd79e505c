"""Test helpers that need no test framework.

``capture()`` collects every message any client would send, with no network::

    from segment_core.testing import capture

    with capture() as events:
        client.track("u1", "Signed Up")
    assert events[0]["event"] == "Signed Up"

The pytest plugin (:mod:`segment_pytest`, registered automatically) adds the
fixtures ``segment_events`` and ``segment_collector``.

Test mode: under a test runner the adapters :func:`divert` the client they build
(Django under ``manage.py test``, pytest-django or pytest, Flask with ``TESTING = True``),
so its events land in :data:`outbox`, like Django's ``mail.outbox``, instead of
being sent. The ``SEND_IN_TESTS`` option turns sending back on.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from segment_core import _capture
from segment_core._clock import monotonic
from segment_core._frames import current_frames
from segment_core.captured import Captured
from segment_core.hosts import is_loopback_url, url_port
from segment_core.lifecycle import live_clients

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = [
    "Captured",
    "capture",
    "divert",
    "divert_in_tests",
    "divert_when",
    "diverted",
    "flush_clients_sending_to",
    "outbox",
    "pytest_running",
    "settle_divert",
]

#: Every message a diverted client accepted, oldest first, as sent (JSON values, as
#: of the call): a list, with finders and assertions (``outbox.assert_tracked(...)``).
#: The pytest plugin empties it before each test; elsewhere, ``outbox.clear()``.
outbox = Captured()


@contextmanager
def capture() -> Iterator[Captured]:
    """Collect, in order, every message accepted by any client while the block runs.

    Each as sent, as of the call: JSON values (a ``Decimal`` is a number, a
    ``datetime`` text), a copy of its own; in a list with finders and assertions
    (``events.assert_tracked("Signed Up")``).
    """
    sink = Captured()
    _capture.sinks.append(sink)
    try:
        yield sink
    finally:
        # This very list: remove() would take the first equal one (another capture's).
        for index, item in enumerate(_capture.sinks):
            if item is sink:
                del _capture.sinks[index]
                break


#: The process that loaded this module: a child forked from it is none of pytest's.
_loaded_in = os.getpid()


def pytest_running() -> bool:
    """Whether pytest runs tests in this process (not in a server it started).

    The plugin (:mod:`segment_pytest`) tells, for the sessions it configured. A
    run without it (``-p no:segment_pytest``, ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``)
    is found by pytest's own session on a thread's stack. A server started with
    ``subprocess`` runs no session; one forked by a test has the session's stack,
    but not the process that loaded this module.
    """
    plugin = sys.modules.get("segment_pytest")  # the plugin pytest registers
    configured = getattr(plugin, "configured", None)  # none: a project's own module
    if callable(configured) and configured():
        return bool(plugin.running())  # type: ignore[union-attr]
    return os.getpid() == _loaded_in and _pytest_session_on_a_stack()


def _pytest_session_on_a_stack() -> bool:
    pytest_main = sys.modules.get("_pytest.main")
    if pytest_main is None:  # pytest was never imported: the production case, at once
        return False
    # From configure to unconfigure, pytest's session runs inside wrap_session; the
    # initial conftests (an app set up there may send) are imported in Config.parse.
    session = getattr(getattr(pytest_main, "wrap_session", None), "__code__", None)
    config = getattr(sys.modules.get("_pytest.config"), "Config", None)
    parsing = getattr(getattr(config, "parse", None), "__code__", None)
    # A process multiprocessing forked (a server a test starts) has the session's
    # frames below its own start: it is none of pytest's.
    process = sys.modules.get("multiprocessing.process")
    started = getattr(getattr(process, "BaseProcess", None), "_bootstrap", None)
    child_start = getattr(started, "__code__", None)
    for top in current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            if frame.f_code is child_start:
                return False
            if frame.f_code is session or frame.f_code is parsing:
                return True
            frame = frame.f_back
    return False


def divert(client: Client, to: list[dict[str, Any]] | None = outbox) -> None:
    """Make ``client`` put what it accepts in ``to`` (default: :data:`outbox`), not send it.

    Messages are still validated and encoded as for sending. ``to=None`` makes
    the client send again.
    """
    client._divert(to)


#: How long a test waits for the background work (``start_thread``) earlier tests left.
BACKGROUND_WAIT_SECONDS = 5.0
#: Calls of start_thread or with_binding no test waits for: those a fixture of a
#: wider scope or a ``setUpClass`` started (a server), and those waited for in vain.
_long_lived: frozenset[int] = frozenset()
#: Whether a test began in this process (see end_earlier_background_work).
_a_test_began = False


def background_work_now() -> frozenset[int]:
    """The calls of :func:`~segment_core.scope.start_thread` and
    :func:`~segment_core.scope.with_binding` running now, for
    :func:`background_work_lives_on`."""
    from segment_core import scope

    return scope.bound_calls_now()


def background_work_lives_on(before: frozenset[int]) -> None:
    """The calls started since ``before`` (what :func:`background_work_now` said) and
    still running belong to no test: a fixture of a wider scope than a test's, a
    ``setUpClass``, started them to run across tests (a server)."""
    global _long_lived
    _long_lived |= background_work_now() - before


def end_earlier_background_work(test: str) -> None:
    """As ``test`` begins: the calls of :func:`~segment_core.scope.start_thread` and
    :func:`~segment_core.scope.with_binding` earlier tests started (their code or
    their fixtures: a view's work after its response) end first, within
    :data:`BACKGROUND_WAIT_SECONDS`, so that what they send is not in this test's
    outbox, capture or collector. A WARNING names ``test`` when one still runs (it is
    not waited for again)."""
    global _long_lived, _a_test_began
    from segment_core import scope

    if not _a_test_began:  # what runs before the first test (a setUpModule's) is no test's
        _a_test_began = True
        background_work_lives_on(frozenset())
        return
    if not scope.wait_for_bound_calls_but(_long_lived, BACKGROUND_WAIT_SECONDS):
        _long_lived |= scope.bound_calls_now()
        logging.getLogger("segment.testing").warning(
            "segment: a start_thread or with_binding call of an earlier test still runs "
            "after %gs; what it sends may show up in %s",
            BACKGROUND_WAIT_SECONDS,
            test,
        )
    # This thread's own: coroutines an event loop that outlives a test (pytest-asyncio's
    # of a wider scope) holds, which run only when the loop does again: no wait ends them.
    pending_here = scope.bound_calls_of_this_thread() - _long_lived
    if pending_here:
        _long_lived |= pending_here
        logging.getLogger("segment.testing").warning(
            "segment: a with_binding coroutine of an earlier test is still pending on "
            "this thread's event loop; what it sends when the loop runs it may show up in %s",
            test,
        )


def divert_when(
    client: Client, check: Callable[[], object], to: list[dict[str, Any]] = outbox
) -> None:
    """:func:`divert` ``client`` if ``check()`` says so as its first message comes.

    For a client made before a test runner starts (Django's ``ready()`` runs
    before ``setup_test_environment()``): its first message is kept from the
    network until ``check()`` has answered. An answer of None (not known yet: a
    runner may still start, as after a ``runtests.py``'s ``django.setup()``) sends
    that message and asks again at the next, until :func:`settle_divert`. A later
    :func:`divert` wins.
    """
    client._divert_when(check, to)


def settle_divert(client: Client) -> None:
    """Ask ``client``'s :func:`divert_when` check a last time, an answer not known
    yet counting as no (an app's first request: a runner has started by then)."""
    client._settle_divert(last=True)


def divert_in_tests(client: Client, *, send: bool, running: Callable[[], object]) -> None:
    """An adapter's test mode for ``client``: sent for real if ``send`` (its
    ``send_in_tests`` option), a capture's too (it records them, and holds back
    only other clients'), else diverted to :data:`outbox` while ``running()``
    says tests run, now or as its first message comes (a runner may start later)."""
    if send:
        divert(client, None)
        client._sends_in_tests = True  # not held back by a capture either
    elif running():
        divert(client)
    else:
        divert_when(client, running)


def diverted(client: Client) -> bool:
    """Whether ``client`` puts what it accepts in an outbox instead of sending it.

    A client :func:`divert_when` left to decide as its first message comes
    decides now.
    """
    client._settle_divert()
    return client._outbox is not None


def flush_clients_sending_to(url: str, timeout: float) -> bool:
    """Deliver what the live clients sending to ``url`` hold, side by side, within
    ``timeout`` seconds; True when all of it was delivered.

    For a collector shared by tests: what a test sent arrives before the next one
    starts, and before the collector stops. Other clients are left alone (one
    sending to a host that does not answer would hold every test up).
    """
    clients = _clients_sending_to(url)
    for client in clients:  # every sender starts now, not one after the other
        # A batch waiting to retry (a fault the test planned, now cleared) goes now.
        client._worker.retry_now()
        client.flush(0)
    deadline = monotonic() + timeout
    # A list, not a generator: each client is waited for, after a failed one too.
    return all([client.flush(max(0.0, deadline - monotonic())) for client in clients])


def start_sending_to(url: str) -> None:
    """Have the live clients sending to ``url`` send what they hold now, without
    waiting for it (a collector's ``wait_for()``: not after their ``flush_interval``).
    A batch waiting to retry still waits."""
    for client in _clients_sending_to(url):
        client.flush(0)


def _clients_sending_to(url: str) -> list[Client]:
    """The live clients whose host is the server of ``url``."""
    return [client for client in live_clients() if _same_server(client.config.host, url)]


def _same_server(url: str, other: str) -> bool:
    """Whether two URLs name one server: same port, same host (any name of this machine)."""
    parts, other_parts = urlsplit(url), urlsplit(other)
    if url_port(parts) != url_port(other_parts):
        return False
    if parts.hostname == other_parts.hostname:
        return True
    return is_loopback_url(url) and is_loopback_url(other)
