"""A visitor snapshot comes from outside (a Celery header, an RQ job's meta): one that
is refused is logged by the field at fault and what kind of value it held, never the
value, which is a visitor's data."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from segment_core import Client
from segment_core.scope import Analytics, restore

SECRET = "alice.secret@example.com"


def good_snapshot() -> dict[str, Any]:
    return Analytics(Client("k", send=False), anonymous_id="a1").snapshot()


def with_value(path: tuple[str, ...], value: object) -> dict[str, Any]:
    snapshot = good_snapshot()
    node = snapshot
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return snapshot


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("context", "ip"), "snapshot.context.ip"),
        (("userId",), "snapshot.userId"),
        (("anonymousId",), "snapshot.anonymousId"),
        (("context", "userAgent"), "snapshot.context.userAgent"),
        (("context", "page"), "snapshot.context.page"),
        (("context", "campaign"), "snapshot.context.campaign"),
        (("context", "consent"), "snapshot.context.consent"),
        (("version",), "snapshot.version"),
    ],
)
def test_a_refused_snapshot_is_logged_by_its_field_without_its_value(
    caplog: pytest.LogCaptureFixture, path: tuple[str, ...], field: str
) -> None:
    # The value as the field cannot take it: too long, of the wrong type, or no address.
    value: object = SECRET if path == ("context", "ip") else [SECRET] * 3
    if path == ("context", "userAgent"):
        value = {"name": SECRET}
    with caplog.at_level(logging.WARNING, logger="segment"):
        assert restore(with_value(path, value), source="a test job") is None
    [record] = caplog.records
    assert field in record.getMessage()
    assert "alice" not in record.getMessage()
