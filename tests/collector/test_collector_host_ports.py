"""Behind a port forward the collector is named with another port: the name is
what the Host check looks at, with any port."""

from __future__ import annotations

import pytest
import requests

from segment_core.collector import CollectorHandle, run_in_background
from tests.collector.helpers import assert_error, batch, message, post

TIMEOUT = 30


@pytest.mark.parametrize("host", ["localhost:9000", "127.0.0.1:18765", "[::1]:1", "LOCALHOST:80"])
def test_a_local_name_with_a_forwarded_port_is_accepted(
    segment_collector: CollectorHandle, host: str
) -> None:
    sent = message()
    answer = post(segment_collector.url, batch(sent), headers={"Host": host})
    assert answer.status_code == 200, answer.text
    assert segment_collector.wait_for(1)[0]["messageId"] == sent["messageId"]
    page = requests.get(segment_collector.url + "/", headers={"Host": host}, timeout=TIMEOUT)
    assert page.status_code == 200


def test_an_allowed_name_with_a_forwarded_port_is_accepted() -> None:
    with run_in_background(allowed_hosts=["collector.internal"]) as collector:
        answer = requests.get(
            collector.url + "/collector/summary",
            headers={"Host": "collector.internal:31765"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "host", ["evil.example:9000", "localhost.evil.example:9000", "localhost:x"]
)
def test_another_name_is_refused_whatever_its_port(
    segment_collector: CollectorHandle, host: str
) -> None:
    answer = post(segment_collector.url, batch(message()), headers={"Host": host})
    assert_error(answer, 400, "host_not_allowed")
    assert segment_collector.summary()["total"] == 0
