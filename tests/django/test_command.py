"""``manage.py segment status|flush``: the configuration, a real probe, no guessed figures."""

from __future__ import annotations

import json
import socket
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

import segment_django


def _run(*args: str) -> str:
    out = StringIO()
    call_command("segment", *args, stdout=out)
    return out.getvalue()


def test_status_shows_the_configuration_masked_and_probes_the_host(
    settings: Any, segment_collector: Any
) -> None:
    settings.SEGMENT = {
        "WRITE_KEY": "secret-write-key-123",
        "HOST": segment_collector.url,
        "TRUSTED_PROXIES": ["10.0.0.0/8"],
    }
    output = _run("status")
    assert "secret-write-key" not in output
    assert "write_key: secr…" in output
    assert f"host: {segment_collector.url}" in output
    assert "trusted_proxies: ['10.0.0.0/8']" in output
    assert f"url: {segment_collector.url}/" in output
    assert "reachable: True" in output
    for counter in ("queued", "sent", "dropped", "retries"):
        assert f"  {counter}: " not in output  # this process's counters are not the server's

    report = json.loads(_run("status", "--json"))
    assert report["client"]["write_key"] == "secr…"
    assert report["host_check"]["reachable"] is True
    assert report["host_check"]["detail"].startswith("answered HTTP ")
    assert "stats" not in report


def test_status_fails_when_the_host_does_not_answer(settings: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.SEGMENT = {"WRITE_KEY": "k", "HOST": f"http://127.0.0.1:{port}"}
    with pytest.raises(CommandError, match=r"does not answer: .*refused"):
        _run("status", "--timeout", "2")
    assert "reachable" not in _run("status", "--no-check")


def test_flush_delivers_what_this_process_holds(settings: Any, segment_collector: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", "HOST": segment_collector.url, "SEND_IN_TESTS": True}
    segment_django.get_client().track("u1", "Queued Before Flush")
    assert "every accepted event was delivered" in _run("flush", "--timeout", "10")
    [event] = segment_collector.wait_for(1, type="track")
    assert event["message"]["event"] == "Queued Before Flush"


def test_flush_reports_what_is_left(settings: Any, segment_collector: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", "HOST": segment_collector.url, "SEND_IN_TESTS": True}
    segment_collector.faults({"delay": 1.0})
    segment_django.get_client().track("u1", "Slow")
    with pytest.raises(CommandError, match="1 event"):
        _run("flush", "--timeout", "0.1")
    segment_collector.wait_for(1, timeout=10, type="track")


def test_an_unknown_verb_is_a_usage_error() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        _run("explode")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "abc"])
def test_a_timeout_that_is_no_wait_is_a_usage_error(value: str) -> None:
    with pytest.raises(CommandError, match="argument --timeout"):
        _run("status", "--timeout", value)


@pytest.mark.parametrize("verb", ["status", "flush"])
def test_settings_no_client_can_be_built_from_are_a_command_error(settings: Any, verb: str) -> None:
    settings.SEGMENT = {
        "WRITE_KEY": "k",
        "OAUTH_CLIENT_ID": "client-1",
        "OAUTH_KEY_ID": "key-1",
        "OAUTH_CLIENT_KEY": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n",
    }
    with pytest.raises(CommandError, match="OAUTH_CLIENT_KEY is not a PEM private key"):
        _run(verb)
