"""segment_django.testing: one-line assertions about what views send."""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
import threading
import unittest
import uuid
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.test import Client, SimpleTestCase

from segment_django.testing import SegmentTestMixin, capture_events


def test_capture_events(client: Client) -> None:
    with capture_events() as events:
        client.get("/track/")
        client.get("/identify/")
    events.assert_tracked("Clicked Buy", sku="A1")
    events.assert_page("track")
    events.assert_identified("u-77", plan="pro")
    assert [m["type"] for m in events] == ["track", "page", "identify", "track", "page"]
    assert len(events.pages()) == 2 and len(events.tracks("Upgraded")) == 1
    assert events.find("page", name="identify")[0]["userId"] == "u-77"


def test_the_outbox_compares_with_a_list_as_mail_outbox_does(client: Client) -> None:
    from segment_django.testing import outbox

    outbox.clear()
    assert outbox == []
    assert not (outbox != [])  # noqa: SIM202
    with capture_events() as events:
        assert events == [] == events
        client.get("/track/")
        assert events != [] and events == list(events) and events == tuple(events)
        assert events == events and events != [*events, {}]
    with pytest.raises(TypeError):
        hash(events)


def test_the_assertions_take_the_values_the_view_passed(client: Client) -> None:
    with capture_events() as events:
        client.get("/checkout/")
    events.assert_tracked(
        "Order Completed",
        total=Decimal("19.99"),
        items=Decimal(2),
        order_id=uuid.UUID(int=5),
        delivery=datetime.date(2024, 1, 2),
        paid_at=datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.timezone.utc),
        skus=("A1", "B2"),
    )
    events.assert_identified("u-5", first_order=datetime.date(2024, 1, 1))
    assert len(events.find("identify", traits={"first_order": datetime.date(2024, 1, 1)})) == 1
    events.assert_tracked("Order Completed", order_id=mock.ANY)  # not JSON: compared as it is
    with pytest.raises(AssertionError, match=r"expected one track with .*total=Decimal\('20.00'\)"):
        events.assert_tracked("Order Completed", total=Decimal("20.00"))


def test_failed_assertions_say_what_was_captured(client: Client) -> None:
    with capture_events() as events:
        client.get("/")
    with pytest.raises(
        AssertionError, match=r"(?s)expected one track with event='Signed Up'.*page 'home'"
    ):
        events.assert_tracked("Signed Up")
    with pytest.raises(AssertionError, match="expected no Segment messages"):
        events.assert_nothing_sent()
    with capture_events() as nothing:
        client.get("/healthz")
    nothing.assert_nothing_sent()


class MixinTests(SegmentTestMixin, SimpleTestCase):
    def test_events_of_each_test(self) -> None:
        self.client.get("/products/3/")
        self.segment_events.assert_page("product-detail", path="/products/3/")


def test_the_assertions_hold_under_python_o() -> None:
    script = (
        "from segment_django.testing import CapturedEvents\n"
        "events = CapturedEvents([{'type': 'track', 'event': 'A', 'properties': {}}])\n"
        "for check in (events.assert_nothing_sent, lambda: events.assert_tracked('B')):\n"
        "    try:\n"
        "        check()\n"
        "    except AssertionError as error:\n"
        "        print(str(error).splitlines()[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "expected no Segment messages, got:",
        "expected one track with event='B', found 0; captured:",
    ]


def test_find_takes_ids_and_timestamps_as_a_call_takes_them() -> None:
    from freezegun import freeze_time

    from segment_core import Client as SegmentClient

    segment = SegmentClient("key", send=False)
    paid_at = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)
    with capture_events() as events:
        segment.track(42, "Order Paid", timestamp=paid_at)
        with freeze_time("2024-05-02 08:00:00"):
            segment.track("u-7", "Order Shipped")
            frozen_now = datetime.datetime.now(datetime.timezone.utc)
    assert [m["event"] for m in events.find(userId=42)] == ["Order Paid"]
    for same_instant in (
        paid_at,
        paid_at.replace(tzinfo=None),  # naive: UTC, as the call takes it
        paid_at.astimezone(datetime.timezone(datetime.timedelta(hours=2))),
        "2024-05-01T14:30:00+02:00",
    ):
        assert [m["event"] for m in events.find(timestamp=same_instant)] == ["Order Paid"]
    assert [m["event"] for m in events.find("track", timestamp=frozen_now)] == ["Order Shipped"]
    assert events.find(timestamp=paid_at + datetime.timedelta(seconds=1)) == []
    assert len(events.find(timestamp=mock.ANY, userId=mock.ANY)) == 2
    segment.shutdown()


def test_a_test_case_waits_for_the_work_earlier_tests_left_not_its_classs_server() -> None:
    # unittest's order: a class whose setUpClass runs a server, a plain test case of
    # another app whose view left work running, then a test that sees the outbox.
    from segment_core import Client
    from segment_core.scope import start_thread
    from segment_core.testing import divert
    from segment_django.testing import outbox

    client = Client("key")
    divert(client)
    stop = threading.Event()
    seen: list[list[str]] = []

    class WithServer(SegmentTestMixin, unittest.TestCase):
        @classmethod
        def setUpClass(cls) -> None:
            super().setUpClass()
            start_thread(stop.wait, 60)  # runs across the class's tests

        def test_1_other_apps_view(self) -> None:
            start_thread(lambda: (threading.Event().wait(0.3), client.track("u", "Late")))

        def test_2_sees_its_own(self) -> None:
            client.track("u", "Own")
            seen.append([m["event"] for m in outbox])

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(WithServer)
    try:
        result = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
    finally:
        stop.set()
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen == [["Own"]]


def test_each_test_s_outbox_starts_empty_whatever_its_set_up_does() -> None:
    """As Django empties ``mail.outbox``: a ``setUp`` that does not call ``super()``,
    or the mixin after ``TestCase`` among the bases, changes nothing."""
    from segment_core import Client
    from segment_core.testing import divert
    from segment_django.testing import outbox

    client = Client("key")
    divert(client)
    seen: list[tuple[str, list[str], list[str]]] = []

    def record(test: Any) -> None:
        client.track("u", "Own")
        events = [m["event"] for m in test.segment_events]
        seen.append((type(test).__name__, [m["event"] for m in outbox], events))

    class Uncooperative(SegmentTestMixin, unittest.TestCase):
        def setUp(self) -> None:  # no super().setUp()
            self.ready = True

        def test_1(self) -> None:
            record(self)

        def test_2(self) -> None:
            record(self)

    class MixinLast(unittest.TestCase, SegmentTestMixin):
        def test_1(self) -> None:
            record(self)

        def test_2(self) -> None:
            record(self)

    class Inherited(Uncooperative):
        def setUp(self) -> None:
            super().setUp()
            client.track("u", "Set Up")

    class StaticSetUp(SegmentTestMixin, unittest.TestCase):
        @staticmethod
        def setUp() -> None:  # unittest calls self.setUp()
            client.track("u", "Static")

        def test_1(self) -> None:
            record(self)

    loader = unittest.defaultTestLoader
    suite = unittest.TestSuite(
        loader.loadTestsFromTestCase(case)
        for case in (Uncooperative, MixinLast, Inherited, StaticSetUp)
    )
    result = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
    assert result.wasSuccessful(), result.errors + result.failures
    own, set_up = ["Own"], ["Set Up", "Own"]
    assert seen == [
        ("Uncooperative", own, own),
        ("Uncooperative", own, own),
        ("MixinLast", own, own),
        ("MixinLast", own, own),
        ("Inherited", set_up, set_up),
        ("Inherited", set_up, set_up),
        ("StaticSetUp", ["Static", "Own"], ["Static", "Own"]),
    ]
    client.shutdown()


def test_a_client_set_to_send_in_tests_sends_under_a_capture_too(client: Client, sent: Any) -> None:
    """SEND_IN_TESTS sends for real: a capture (segment_events, SegmentTestMixin's)
    records what the client accepts without holding it back; other clients' it does."""
    from segment_core import Client as SegmentClient

    other = SegmentClient("other-key", host="http://127.0.0.1:9")  # never reached
    with capture_events() as events:
        client.get("/track/")
        assert other.track("u", "Held Back")[0]
    assert [m["type"] for m in sent()] == ["track", "page"]
    assert [m.get("event") or m["type"] for m in events] == ["Clicked Buy", "page", "Held Back"]
    assert other.stats()["sent"] == 0 and other.stats()["pending"] == 0
    other.shutdown(timeout=0)
