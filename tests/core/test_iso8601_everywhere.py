"""A call's ``timestamp`` text: the same forms taken, as the same instant, on every Python."""

from __future__ import annotations

import datetime as dt
import sys

import pytest

from segment_core import Client, InvalidMessage, spec
from segment_core.collector import CollectorHandle
from tests.collector.helpers import batch, message, post

# (text as written by some system, the timestamp sent: UTC with milliseconds)
WRITTEN_ELSEWHERE = [
    ("2024-01-02 03:04:05.123+01", "2024-01-02T02:04:05.123Z"),  # PostgreSQL's timestamptz
    ("2024-01-02 03:04:05 +0100", "2024-01-02T02:04:05.000Z"),  # Ruby's Time#to_s
    ("20240102T030405Z", "2024-01-02T03:04:05.000Z"),  # basic format
    ("20240102T030405,25+0100", "2024-01-02T02:04:05.250Z"),
    ("2024-01-02T030405", "2024-01-02T03:04:05.000Z"),  # naive: UTC
    ("20240102", "2024-01-02T00:00:00.000Z"),
    ("2024-W01-2T03:04:05Z", "2024-01-02T03:04:05.000Z"),  # ISO week date
    ("2024W012T0304Z", "2024-01-02T03:04:00.000Z"),
    ("2024-W52-7", "2024-12-29T00:00:00.000Z"),
    ("2024-01-02T03:04:05,5Z", "2024-01-02T03:04:05.500Z"),  # decimal comma
    ("2024-01-02T03:04:05+01", "2024-01-02T02:04:05.000Z"),
    ("2024-01-02T03:04:05.5-05:30", "2024-01-02T08:34:05.500Z"),
    ("2024-01-02T03:04:05.123-0530", "2024-01-02T08:34:05.123Z"),
    ("2024-01-02T03:04:05+01:00:30", "2024-01-02T02:03:35.000Z"),
    ("2024-01-02T03:04:05.123456+01:00:30.5", "2024-01-02T02:03:34.623Z"),  # offset's fraction
    ("2024-01-02T03:04:05-01:00:30.25", "2024-01-02T04:04:35.250Z"),
    ("2024-01-02T03:04:05+23:59:59.999999", "2024-01-01T03:04:05.000Z"),
    ("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.123Z"),  # Go, Java
    ("2024-01-02T03:04:05.12+00:00", "2024-01-02T03:04:05.120Z"),
    ("2024-01-02T03", "2024-01-02T03:00:00.000Z"),
    ("2024-05-01T12:30:15.250Z", "2024-05-01T12:30:15.250Z"),
]

NO_DATE_AND_TIME = [
    "2024-002T03:04:05Z",  # ordinal dates: no Python reads them
    "2024-W53-1T00:00Z",  # 2024 has 52 ISO weeks
    "2024-01-02T24:00:00Z",
    "2024-01-02T23:59:60Z",
    "2024-01-02T03:04:05+24:00",
    "2024-01-02T03:04:05ZZ",
    "2024-01-02T03:04:05Z+01:00",
    "2024-01-02T03:04:05 ",
    "2024-1-2T03:04:05Z",
    "\u0662\u0660\u0662\u0664-01-02T03:04:05Z",
    "yesterday",
]


@pytest.fixture
def client() -> Client:
    return Client("key", send=False)


@pytest.mark.parametrize(("text", "sent"), WRITTEN_ELSEWHERE)
def test_iso_8601_text_from_other_systems_is_sent_as_the_same_utc_instant(
    client: Client, text: str, sent: str
) -> None:
    assert client.track("u", "Order Completed", timestamp=text)[1]["timestamp"] == sent


@pytest.mark.parametrize("text", NO_DATE_AND_TIME)
def test_text_that_names_no_date_and_time_is_refused(client: Client, text: str) -> None:
    with pytest.raises(InvalidMessage, match="timestamp must be an ISO-8601 date and time"):
        client.track("u", "Order Completed", timestamp=text)


def test_the_collector_takes_only_the_form_the_client_sends(
    segment_collector: CollectorHandle,
) -> None:
    # The client reads PostgreSQL's text and sends the Spec's form; the collector
    # holds what arrives to the Spec, so the same text sent as it is marks it bad.
    written = "2024-01-02 03:04:05.123+01"
    client = Client("key", host=segment_collector.url)
    client.track("u", "Order Completed", timestamp=written, message_id="from-the-client")
    assert client.shutdown(timeout=5)
    as_is = message(timestamp=written, messageId="as-written")
    assert post(segment_collector.url, batch(as_is)).status_code == 200
    segment_collector.wait_for(2)
    sent = segment_collector.event("from-the-client")
    assert (sent["status"], sent["message"]["timestamp"]) == ("good", "2024-01-02T02:04:05.123Z")
    as_written = segment_collector.event("as-written")
    assert as_written["status"] == "bad"
    assert as_written["reasons"] == [f"timestamp {written!r} is not an ISO-8601 date-time"]


def test_the_reader_is_python_3_11_s_on_every_python() -> None:
    if sys.version_info >= (3, 11):
        assert spec.fromisoformat == dt.datetime.fromisoformat
    else:  # the backport of Python 3.11's reader, a dependency on 3.10 only
        from backports.datetime_fromisoformat import datetime_fromisoformat

        text = "2024-01-02T03:04:05.5+01:00"
        assert spec.fromisoformat(text) == datetime_fromisoformat(text)
