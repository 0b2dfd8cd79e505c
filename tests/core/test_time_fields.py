"""Times as they are sent: ``sentAt`` stamped when the batch leaves, dates in values as
analytics-python writes them, and four-digit years whatever the clock says."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from freezegun import freeze_time
from segment.analytics import Client as TheirClient

from segment_core import Client
from segment_core.testing import capture
from tests.core.conftest import client_with_errors
from tests.core.loopback import Loopback, Seen, accept, reply, start
from tests.receiver import Receiver

START = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
#: How far the test's clock moves while the token endpoint answers.
TOKEN_DELAY = dt.timedelta(minutes=5)


class NoOffset(dt.tzinfo):
    """A tzinfo that gives no offset: a datetime with it is naive, as Python reads it."""

    def utcoffset(self, when: dt.datetime | None) -> None:
        return None

    def dst(self, when: dt.datetime | None) -> None:
        return None


def test_naive_datetimes_in_values_are_sent_without_a_zone_as_analytics_python_sends_them(
    receiver: Receiver,
) -> None:
    # Django with USE_TZ=False gives naive local times: a "Z" would shift them by the offset.
    naive = dt.datetime(2024, 5, 1, 12, 30)
    values = {
        "paid_at": naive,
        "exact": dt.datetime(2024, 5, 1, 12, 30, 15, 250000),
        "no_offset": naive.replace(tzinfo=NoOffset()),
        "old": dt.datetime(999, 1, 2),
        "aware": naive.replace(tzinfo=dt.timezone.utc),
    }
    for library in (TheirClient, Client):
        client = library("write-key", host=receiver.url, sync_mode=True)
        client.track("u1", "Order Paid", values, timestamp=START)
        client.identify("u1", {"created_at": naive}, timestamp=START)
    theirs_track, theirs_identify, ours_track, ours_identify = receiver.messages()
    assert ours_track["properties"] == {
        "paid_at": "2024-05-01T12:30:00",
        "exact": "2024-05-01T12:30:15.250000",
        "no_offset": "2024-05-01T12:30:00",
        "old": "0999-01-02T00:00:00",
        "aware": "2024-05-01T12:30:00Z",  # analytics-python: "+00:00", the same instant
    }
    their_naive = {k: v for k, v in theirs_track["properties"].items() if k != "aware"}
    assert {k: v for k, v in ours_track["properties"].items() if k != "aware"} == their_naive
    assert (
        ours_identify["traits"]
        == theirs_identify["traits"]
        == {"created_at": "2024-05-01T12:30:00"}
    )


def test_a_naive_timestamp_is_utc_while_a_naive_value_keeps_no_zone() -> None:
    naive = dt.datetime(2024, 5, 1, 12, 30, 0, 5000)
    client = Client("key", send=False)
    with capture() as messages:
        client.track("u1", "E", {"at": naive}, context={"at": naive}, timestamp=naive)
    [message] = messages
    assert message["timestamp"] == "2024-05-01T12:30:00.005Z"
    assert message["properties"]["at"] == message["context"]["at"] == "2024-05-01T12:30:00.005000"


@pytest.fixture
def authorization_and_batch_server() -> Iterator[tuple[Loopback, list[dt.datetime]]]:
    """A server whose token endpoint takes ``TOKEN_DELAY`` of the test's clock to answer
    and whose batch endpoint refuses the first token with a 401; and that clock."""
    pytest.importorskip("jwt")
    clock = [START]
    issued: list[str] = []

    def answer(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        if seen.path == "/token":
            clock[0] += TOKEN_DELAY
            issued.append(f"token-{len(issued) + 1}")
            token = json.dumps({"access_token": issued[-1], "expires_in": 3600}).encode()
            reply(handler, 200, token, [("Content-Type", "application/json")])
        elif seen.headers.get("authorization") == "Bearer token-1":
            reply(handler, 401, b'{"error": "invalid_token"}')
        else:
            accept(handler, seen)

    server = start(answer)
    yield server, clock
    server.stop()


def test_sent_at_is_stamped_once_the_token_is_in_hand_and_again_for_the_resend_after_a_401(
    authorization_and_batch_server: tuple[Loopback, list[dt.datetime]], clients: list[Client]
) -> None:
    server, clock = authorization_and_batch_server
    client, errors = client_with_errors(
        clients,
        server.url,
        sync_mode=True,
        now=lambda: clock[0],
        oauth_client_id="client-1",
        oauth_client_key=_private_key(),
        oauth_key_id="key-1",
        oauth_auth_server=server.url,
    )
    assert client.track("u1", "Authorized")[0], errors
    refused, resent = server.posted()
    assert [refused.headers["authorization"], resent.headers["authorization"]] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    # Segment moves each timestamp by receivedAt - sentAt: the wait for a token is no skew.
    assert [_sent_at(refused), _sent_at(resent)] == [
        "2024-05-01T12:05:00.000Z",
        "2024-05-01T12:10:00.000Z",
    ]
    assert resent.batch[0]["timestamp"] == "2024-05-01T12:00:00.000Z"


def _sent_at(seen: Seen) -> str:
    body = seen.body
    if seen.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    sent_at: str = json.loads(body)["sentAt"]
    return sent_at


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def test_a_default_timestamp_before_year_1000_keeps_four_digits() -> None:
    client = Client("key", send=False)
    with freeze_time("0999-06-01 12:00:00"), capture() as messages:
        assert client.track("u1", "E")[0]
    [message] = messages
    assert message["timestamp"] == "0999-06-01T12:00:00.000Z"
