"""Run by Django's own test runner (``manage.py test``), from tests/e2e/test_django_jobs.py.

Under the runner nothing is sent: the events wait in ``segment_django.testing.outbox``.
"""

from __future__ import annotations

from django.test import TestCase

import segment_core
from segment_django.testing import SegmentTestMixin, outbox


class OutboxTests(SegmentTestMixin, TestCase):
    def test_a_view_and_the_module_api_fill_the_outbox(self) -> None:
        response = self.client.get("/item/3", HTTP_X_TEST_USER="user-5")
        self.assertEqual(response.status_code, 200)
        segment_core.track("importer", "Order Imported", {"n": 1})
        outbox.assert_tracked("Item Viewed", n=3)
        outbox.assert_tracked("Order Imported", n=1)
        self.assertEqual(outbox.pages()[0]["userId"], "user-5")
        self.segment_events.assert_tracked("Item Viewed", n=3)

    def test_each_test_starts_with_an_empty_outbox(self) -> None:
        outbox.assert_nothing_sent()
