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

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from segment_core import _capture

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["capture", "divert", "divert_in_tests", "divert_when", "outbox", "pytest_running"]

#: Every message a diverted client accepted, oldest first, as sent (JSON values, as
#: of the call). The pytest plugin empties it before each test; elsewhere, ``outbox.clear()``.
outbox: list[dict[str, Any]] = []


@contextmanager
def capture() -> Iterator[list[dict[str, Any]]]:
    """Collect, in order, every message accepted by any client while the block runs.

    Each as sent, as of the call: JSON values (a ``Decimal`` is a number, a
    ``datetime`` text), a copy of its own.
    """
    sink: list[dict[str, Any]] = []
    _capture.sinks.append(sink)
    try:
        yield sink
    finally:
        # This very list: remove() would take the first equal one (another capture's).
        for index, item in enumerate(_capture.sinks):
            if item is sink:
                del _capture.sinks[index]
                break


def pytest_running() -> bool:
    """Whether pytest runs tests in this process (not in a server it started)."""
    plugin = sys.modules.get("segment_pytest")  # the plugin pytest registers
    return plugin is not None and bool(plugin.running())


def divert(client: Client, to: list[dict[str, Any]] | None = outbox) -> None:
    """Make ``client`` put what it accepts in ``to`` (default: :data:`outbox`), not send it.

    Messages are still validated and encoded as for sending. ``to=None`` makes
    the client send again.
    """
    client._divert(to)


def divert_when(
    client: Client, check: Callable[[], object], to: list[dict[str, Any]] = outbox
) -> None:
    """:func:`divert` ``client`` if ``check()`` says so as its first message comes.

    For a client made before a test runner starts (Django's ``ready()`` runs
    before ``setup_test_environment()``): its first message is kept from the
    network until ``check()`` has answered. A later :func:`divert` wins.
    """
    client._divert_when(check, to)


def divert_in_tests(client: Client, *, send: bool, running: Callable[[], object]) -> None:
    """An adapter's test mode for ``client``: sent for real if ``send`` (its
    ``send_in_tests`` option), else diverted to :data:`outbox` while ``running()``
    says tests run, now or as its first message comes (a runner may start later)."""
    if send:
        divert(client, None)
    elif running():
        divert(client)
    else:
        divert_when(client, running)
