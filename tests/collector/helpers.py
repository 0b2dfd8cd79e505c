"""Small builders for collector tests: messages, batches and raw HTTP posts."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import orjson
import requests

DROP = object()  # pass as a field value to remove that field from a message

_CALL_FIELDS: dict[str, dict[str, Any]] = {
    "track": {"event": "Signed Up", "properties": {"plan": "pro"}},
    "identify": {"traits": {"email": "ada@example.com"}},
    "page": {"name": "Home", "properties": {"path": "/", "url": "https://example.com/"}},
    "screen": {"name": "Settings", "properties": {}},
    "group": {"groupId": "group-1", "traits": {"name": "Acme"}},
    "alias": {"previousId": "anon-1"},
}


def new_id() -> str:
    return "test-" + uuid.uuid4().hex


def message(kind: str = "track", **fields: Any) -> dict[str, Any]:
    """A valid message of `kind`; keyword arguments override (or, with DROP, remove) fields."""
    built: dict[str, Any] = {
        "type": kind,
        "messageId": new_id(),
        "userId": "user-1",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "context": {"library": {"name": "tests", "version": "1.0"}},
        **_CALL_FIELDS.get(kind, {}),
    }
    for name, value in fields.items():
        if value is DROP:
            built.pop(name, None)
        else:
            built[name] = value
    return built


def batch(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"batch": list(messages), "sentAt": "2024-05-01T12:00:01.000Z", **top}


def post(
    url: str,
    body: Any = None,
    *,
    path: str = "/v1/batch",
    data: bytes | None = None,
    gzipped: bool = False,
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> requests.Response:
    """POST `body` as compact JSON (or raw `data`) to the collector at `url`."""
    payload = data if data is not None else orjson.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if gzipped:
        payload = gzip.compress(payload)
        all_headers["Content-Encoding"] = "gzip"
    return requests.post(url + path, data=payload, headers=all_headers, auth=auth, timeout=30)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Check a collector error: the status, JSON content and the error code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body
