"""Turn one `/v1/*` request into records to store, or a 400/401 `RequestError`.

Plain functions over bytes, headers and parsed JSON, so they can be tested and
reused without a server. Limits follow SPEC.md:

* a request body, on the wire and once un-gzipped, may be at most 500 * 1024 bytes
  (512,000; Segment's libraries stop at 475,000 to leave headroom);
* a message may be at most 32 * 1024 bytes, measured as compact JSON (orjson, no
  spaces, UTF-8) of the message as sent (without a `writeKey`, and on the single
  routes without the `type` the route adds); a batch message is held to the limit
  again once the batch's shared `context` and `integrations` are merged in;
* a batch may hold at most 2,500 messages.

A string holding a lone surrogate escape (``"\\ud83d"``: ``JSON.stringify`` writes
half an emoji so) is valid JSON that UTF-8 cannot hold: the message is stored with
U+FFFD in its place and marked bad, naming the field, as the client refuses it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from segment_core.collector._json import dumps, loads, loads_strictly
from segment_core.collector.store import EventRecord
from segment_core.jsonvalues import replace_lone_surrogates
from segment_core.masking import masked_with_fingerprint
from segment_core.spec import (
    MAX_NESTING_DEPTH,
    is_iso8601,
    json_type,
    reserved_field_problems,
    too_deep,
    validate_message,
)

__all__ = [
    "BATCH_ENDPOINTS",
    "SINGLE_ENDPOINTS",
    "Limits",
    "RequestError",
    "build_records",
    "decode_body",
    "endpoint_name",
    "parse_json",
    "utc_now_iso",
    "write_key_from",
]

BATCH_ENDPOINTS = frozenset({"batch", "import"})
SINGLE_ENDPOINTS = frozenset({"alias", "group", "identify", "page", "screen", "track"})
#: analytics.js (analytics-next) posts to one-letter routes (``b``: its batching mode).
SHORT_ENDPOINTS = {
    "a": "alias",
    "b": "batch",
    "g": "group",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "t": "track",
}


def endpoint_name(endpoint: str) -> str | None:
    """The call a ``/v1/<endpoint>`` route stands for (``None``: no such route)."""
    if endpoint in BATCH_ENDPOINTS or endpoint in SINGLE_ENDPOINTS:
        return endpoint
    return SHORT_ENDPOINTS.get(endpoint)


GENERATED_ID_PREFIX = "collector-"


@dataclass(frozen=True)
class Limits:
    """Size limits of one request (see the module docstring)."""

    max_message_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_messages: int = 2500


class RequestError(Exception):
    """A request the collector refuses; becomes `{"code": ..., "message": ...}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def utc_now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds and a `Z`."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode_body(raw: bytes, content_encoding: str, limits: Limits) -> bytes:
    """Un-gzip `raw` when asked to, never producing more than the request limit."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise RequestError(
            400, "unsupported_encoding", f"Content-Encoding {content_encoding!r} is not supported"
        )
    budget = limits.max_request_bytes
    parts: list[bytes] = []
    remaining = raw
    try:
        # A gzip body may hold several members back to back; read them all.
        while True:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = decompressor.decompress(remaining, budget + 1)
            budget -= len(chunk)
            parts.append(chunk)
            if budget < 0:
                raise RequestError(
                    400,
                    "request_too_large",
                    f"the un-gzipped body is over {limits.max_request_bytes} bytes",
                )
            if not decompressor.eof:
                raise RequestError(400, "invalid_gzip", "the gzip body is truncated")
            remaining = decompressor.unused_data
            if not remaining:
                break
    except zlib.error as error:
        raise RequestError(400, "invalid_gzip", f"the body is not valid gzip: {error}") from None
    return b"".join(parts)


def parse_json(body: bytes) -> Any:
    """Parse a request body, or raise a 400 `invalid_json` error."""
    try:
        return loads(body)
    except orjson.JSONDecodeError as error:
        payload = _parse_with_lone_surrogates(body)
        if payload is None:
            raise RequestError(
                400, "invalid_json", f"the body is not valid JSON: {error}"
            ) from None
        return payload


def _parse_with_lone_surrogates(body: bytes) -> Any:
    """``body`` parsed as orjson would, if what orjson refused was only lone surrogates.

    Their strings are kept as they are: each message is repaired and marked bad
    on its own (see :func:`_encoded`). ``None`` when the body is not such JSON.
    """
    try:
        payload = loads_strictly(body.decode("utf-8"))
    except (ValueError, RecursionError, OverflowError):  # UnicodeDecodeError too
        return None
    found: list[str] = []
    replace_lone_surrogates(payload, "", found)
    return payload if found else None


def write_key_from(authorization: str | None, payload: object) -> tuple[str | None, str | None]:
    """The write key and where it came from: "basic", "body", "basic+body" or None.

    A body's `writeKey` that is neither a string nor null gets a 400
    `invalid_write_key`: a key sent with the wrong type is not taken for no key.
    """
    basic_key = _basic_username(authorization) if authorization else None
    body_key = payload.get("writeKey") if isinstance(payload, dict) else None
    if body_key is not None and not isinstance(body_key, str):
        raise RequestError(
            400,
            "invalid_write_key",
            f"writeKey in the body must be a string, got {json_type(body_key)}",
        )
    if not body_key:
        body_key = None
    elif not body_key.isascii():
        body_key = _valid_text(body_key)
    if basic_key is not None and body_key is not None:
        if basic_key != body_key:
            raise RequestError(
                401,
                "unauthorized",
                "the write key in the Authorization header differs from the one in the body",
            )
        return basic_key, "basic+body"
    if basic_key is not None:
        return basic_key, "basic"
    if body_key is not None:
        return body_key, "body"
    return None, None


def _basic_username(authorization: str) -> str | None:
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None  # e.g. an OAuth bearer token: not a write key
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise RequestError(
            401, "unauthorized", "the Authorization header is not valid HTTP Basic"
        ) from None
    username = decoded.partition(":")[0]
    return username or None


def build_records(
    payload: object,
    endpoint: str,
    *,
    write_key: str | None,
    write_key_source: str | None,
    received_at: str,
    limits: Limits,
) -> list[EventRecord]:
    """Validate every message of a request and make the records to store."""
    if not isinstance(payload, dict):
        raise RequestError(400, "invalid_body", "the body must be a JSON object")
    path = f"/v1/{endpoint}"
    endpoint = endpoint_name(endpoint) or endpoint
    if endpoint in BATCH_ENDPOINTS:
        messages = _batch_messages(payload, limits)
        sent_at = payload.get("sentAt")
        batch_reasons = _batch_sent_at_reasons(sent_at)
    else:
        fields = {key: value for key, value in payload.items() if key != "writeKey"}
        message, single, text_reasons = _encoded(fields, None, limits)
        encoded: bytes | None = single
        batch_reasons = []
        if "type" not in message:
            # The route says which call this is; the limit held the message as sent.
            message["type"] = endpoint
            encoded = dumps(message)
        elif message["type"] != endpoint:
            batch_reasons.append(f"type {message['type']!r:.60} does not match the route {path}")
        messages = [(message, encoded, text_reasons)]
        sent_at = message.get("sentAt")
    records = []
    for index, (message, encoded, text_reasons) in enumerate(messages):
        _check_depth(message, None if endpoint not in BATCH_ENDPOINTS else index)
        if encoded is None:  # merged with the batch's context: held to the same limit
            message, encoded_now, more = _encoded(message, index, limits, merged=True)
            encoded, text_reasons = encoded_now, text_reasons + more
        reasons = text_reasons + validate_message(message) + batch_reasons
        relayable = not reasons
        reasons += reserved_field_problems(message)
        records.append(
            _record(
                message,
                encoded,
                reasons,
                relayable=relayable,
                sent_at=_valid_text(sent_at) if isinstance(sent_at, str) else None,
                write_key=write_key,
                write_key_source=write_key_source,
                received_at=received_at,
                endpoint=path,
            )
        )
    return records


def _batch_messages(
    payload: dict[str, Any], limits: Limits
) -> list[tuple[Any, bytes | None, list[str]]]:
    """The batch's messages, each with its JSON when the merge left it unchanged.

    And with the reasons its text was repaired (see :func:`_encoded`).
    """
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise RequestError(400, "invalid_batch", "batch must be an array of messages")
    if len(batch) > limits.max_batch_messages:
        raise RequestError(
            400,
            "too_many_messages",
            f"the batch has {len(batch)} messages; the limit is {limits.max_batch_messages}",
        )
    shared: dict[str, dict[str, Any]] = {}
    for field in ("context", "integrations"):
        value = payload.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise RequestError(400, "invalid_batch", f"the batch's {field} must be an object")
        shared[field] = value
    messages: list[tuple[Any, bytes | None, list[str]]] = []
    for index, message in enumerate(batch):
        if isinstance(message, dict) and "writeKey" in message:
            # analytics.js puts the key in each message too: never stored, as the
            # batch's own is not (the record keeps its masked form).
            message = {key: value for key, value in message.items() if key != "writeKey"}
        repaired, encoded, text_reasons = _encoded(message, index, limits)
        if isinstance(message, dict) and shared:
            # Encoded again once merged; lone surrogates are found then, in both.
            messages.append((_merge_shared(message, shared), None, []))
        else:
            messages.append((repaired, encoded, text_reasons))
    return messages


def _merge_shared(message: dict[str, Any], shared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge the batch's context/integrations in; the message's own keys win."""
    merged = dict(message)
    for field, values in shared.items():
        own = message.get(field)
        if own is None:
            merged[field] = dict(values)
        elif isinstance(own, dict):
            merged[field] = {**values, **own}
    return merged


def _check_depth(message: object, index: int | None) -> None:
    """Refuse what would nest too deeply to be served back (the client's own limit)."""
    where = "message" if index is None else f"message #{index}"
    path = too_deep(message, where)
    if path is not None:
        raise RequestError(
            400,
            "message_too_deep",
            f"{_valid_text(path):.200} is nested more than {MAX_NESTING_DEPTH} levels deep "
            "(objects and arrays)",
        )


def _batch_sent_at_reasons(sent_at: object) -> list[str]:
    if sent_at is None or is_iso8601(sent_at):
        return []
    return [f"the batch's sentAt {sent_at!r:.60} is not an ISO-8601 date-time string"]


def _encoded(
    message: Any, index: int | None, limits: Limits | None = None, *, merged: bool = False
) -> tuple[Any, bytes, list[str]]:
    """The message, as compact JSON, and why its text had to be repaired.

    Lone surrogates, which JSON can carry but UTF-8 cannot, become U+FFFD in
    the message returned; each is a reason naming its field. With ``limits``, a
    message over the size limit is a 400 (``merged``: it is, once the batch's
    shared context and integrations are in it).
    """
    which = "the message" if index is None else f"message #{index}"
    text_reasons: list[str] = []
    try:
        encoded = dumps(message)
    except orjson.JSONEncodeError:
        # orjson writes no more than 254 levels: such a message is too deep first.
        _check_depth(message, index)
        sent_id = message.get("messageId") if isinstance(message, dict) else None
        message = replace_lone_surrogates(message, "", text_reasons)
        if not text_reasons:
            raise RequestError(400, "invalid_json", f"{which} cannot be written as JSON") from None
        if isinstance(message, dict) and isinstance(sent_id, str) and not sent_id.isascii():
            # Its escapes written out, not U+FFFD: two ids that differ by their lone
            # surrogates stay two messages (and a retry of one, a duplicate).
            message["messageId"] = sent_id.encode("utf-8", "backslashreplace").decode()
        encoded = dumps(message)  # within the limit, every text was repaired
        text_reasons = [_stored_as(reason) for reason in text_reasons[:5]] + (
            [f"{len(text_reasons) - 5} more strings with lone surrogates"]
            if len(text_reasons) > 5
            else []
        )
    size = len(encoded)
    if limits is not None and size > limits.max_message_bytes:
        once = " once the batch's context and integrations are merged in" if merged else ""
        raise RequestError(
            400,
            "message_too_large",
            f"{which} is {size} bytes as JSON{once}; the limit is {limits.max_message_bytes}",
        )
    return message, encoded, text_reasons


def _stored_as(reason: str) -> str:
    """A repaired text's reason, saying what was stored instead."""
    if reason.startswith("messageId:"):
        return reason + "; stored with its escapes written out"
    return reason + "; stored as U+FFFD"


def _valid_text(text: str) -> str:
    """``text`` with any lone surrogate replaced by U+FFFD (UTF-8 cannot hold one)."""
    if text.isascii():
        return text
    repaired: str = replace_lone_surrogates(text, "", [])
    return repaired


def _record(
    message: object,
    encoded: bytes,
    reasons: list[str],
    *,
    relayable: bool,
    sent_at: str | None,
    write_key: str | None,
    write_key_source: str | None,
    received_at: str,
    endpoint: str,
) -> EventRecord:
    fields = message if isinstance(message, dict) else {}
    message_id = fields.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        message_id = GENERATED_ID_PREFIX + uuid.uuid4().hex
    kind = fields.get("type")
    event = fields.get("event")
    return EventRecord(
        message_id=message_id,
        type=kind if isinstance(kind, str) else None,
        event=event if isinstance(event, str) else None,
        user_id=_id_text(fields.get("userId")),
        anonymous_id=_id_text(fields.get("anonymousId")),
        reasons=tuple(reasons),
        received_at=received_at,
        sent_at=sent_at,
        # Stored events are readable through the query API and the page: the key
        # is kept only as much as it helps to tell keys apart.
        write_key=masked_with_fingerprint(write_key),
        write_key_source=write_key_source,
        endpoint=endpoint,
        message=encoded,
        relayable=relayable,
    )


def _id_text(value: object) -> str | None:
    """An id as the text a query filters on: numbers are compared as strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(value)
