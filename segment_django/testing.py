"""Assert what your Django views send to Segment, in one line, with no network.

::

    from segment_django.testing import capture_events

    def test_signup(client):
        with capture_events() as events:
            client.post("/signup/", {"email": "a@example.com"})
        events.assert_tracked("Signed Up", plan="free")

In a ``TestCase``, mix in :class:`SegmentTestMixin` and use ``self.segment_events``.
Every message any client would send is captured when it is accepted (the
automatic page call included), so nothing needs flushing.

Under ``manage.py test`` and pytest-django nothing is sent at all: the client
puts its events in :data:`outbox` (like ``mail.outbox``), unless
``SEGMENT["SEND_IN_TESTS"]`` is True::

    from segment_django.testing import outbox

    outbox.assert_tracked("Order Email Sent", order_id="o-1")

pytest empties it before each test; :class:`SegmentTestMixin` before its ``setUp``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from segment_core import testing
from segment_core.captured import Captured
from segment_core.testing import capture

__all__ = ["CapturedEvents", "SegmentTestMixin", "capture_events", "outbox"]

#: The messages captured so far, with finders and assertions (a list).
CapturedEvents = Captured


#: What the Django client took instead of sending, under a test runner: the test
#: outbox of every adapter, ``segment_core.testing.outbox``.
outbox = testing.outbox


@contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """Capture every message sent while the block runs."""
    with capture() as messages:
        yield messages


class SegmentTestMixin:
    """For ``django.test.TestCase``: ``self.segment_events`` captures each test's
    messages, and :data:`outbox` is emptied before each test, as Django empties
    ``mail.outbox``: before the class's ``setUp``, whether it calls ``super()`` or
    not, and wherever the mixin stands among the bases."""

    segment_events: CapturedEvents

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The class's ``setUpClass`` or Django's ``setUpTestData``: its start_thread
        work (a server) runs across the class's tests, and none waits for it. Its
        ``setUp``: each test is prepared first."""
        super().__init_subclass__(**kwargs)
        for name in ("setUpClass", "setUpTestData"):
            # The class's own, or the one it inherits (from a base without the mixin).
            found = next((k.__dict__[name] for k in cls.__mro__ if name in k.__dict__), None)
            if isinstance(found, classmethod):
                setattr(cls, name, classmethod(_long_lived_work(found.__func__)))
        # As the class has it: a function, or a staticmethod or classmethod.
        set_up = next(k.__dict__["setUp"] for k in cls.__mro__ if "setUp" in k.__dict__)
        if not getattr(set_up, "_segment_prepares", False):
            cls.setUp = _preparing(set_up)  # type: ignore[method-assign,assignment]

    def setUp(self) -> None:
        _prepare(self)
        super().setUp()  # type: ignore[misc]

    setUp._segment_prepares = True  # type: ignore[attr-defined]


def _prepare(test: Any) -> None:
    """Before each test, once: what earlier tests left running ended, the outbox
    emptied, and ``segment_events`` capturing until the test's cleanup."""
    if test.__dict__.get("_segment_prepared"):
        return
    test._segment_prepared = True
    testing.end_earlier_background_work(test.id())
    outbox.clear()
    manager = capture_events()
    test.segment_events = manager.__enter__()
    test.addCleanup(manager.__exit__, None, None, None)
    test.addCleanup(test.__dict__.pop, "_segment_prepared", None)


def _preparing(set_up: Any) -> Callable[[Any], None]:
    @functools.wraps(getattr(set_up, "__func__", set_up))
    def prepared_first(test: Any) -> None:
        _prepare(test)
        set_up.__get__(test, type(test))()

    prepared_first._segment_prepares = True  # type: ignore[attr-defined]
    return prepared_first


def _long_lived_work(set_up_class: Callable[[type], None]) -> Callable[[type], None]:
    @functools.wraps(set_up_class)
    def wrapped(cls: type) -> None:
        running = testing.background_work_now()
        try:
            set_up_class(cls)
        finally:
            testing.background_work_lives_on(running)

    return wrapped
