"""A snapshot as JSON text: its size is what it holds, however the text escapes it."""

from __future__ import annotations

import json
import sys

import pytest

from segment_core import Analytics
from segment_core.scope import InvalidSnapshot

PATH = "/商品/" + "中" * 1200


def chinese_shop_visitor() -> Analytics:
    page = {"path": PATH, "url": "https://shop.example" + PATH, "title": "商品" * 300}
    return Analytics(anonymous_id="a1", context={"ip": "203.0.113.9", "page": page})


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_a_snapshot_of_a_non_ascii_page_reads_back_from_its_json_text(ensure_ascii: bool) -> None:
    snapshot = chinese_shop_visitor().snapshot()
    assert snapshot["context"]["page"]["path"] == PATH  # kept: under 16 KiB as UTF-8
    text = json.dumps(snapshot, ensure_ascii=ensure_ascii)
    if ensure_ascii:
        assert len(text) > 16384  # \uXXXX: six characters for each of the page's

    for value in (text, text.encode()):
        restored = Analytics.from_snapshot(value)
        assert restored.snapshot() == snapshot


def test_json_text_is_measured_as_read() -> None:
    over = {"version": 1, "anonymousId": "a", "context": {"page": {"title": "中" * 8000}}}
    with pytest.raises(InvalidSnapshot, match="over 16384 bytes"):  # 24,000 bytes of UTF-8
        Analytics.from_snapshot(json.dumps(over, ensure_ascii=False))


def test_json_text_too_long_to_hold_a_snapshot_is_refused_before_parsing() -> None:
    text = json.dumps({"version": 1, "anonymousId": "a", "padding": " " * 100_000})
    with pytest.raises(InvalidSnapshot, match="over 98304 characters of JSON text"):
        Analytics.from_snapshot(text)


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_text_nested_deeper_than_a_snapshot_is_refused_as_one(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    nested = opening * 5000 + "1" + closing * 5000  # 30 KB: within the length bound
    text = '{"version": 1, "anonymousId": "a", "context": ' + nested + "}"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default: a test run may have raised it
    try:
        with pytest.raises(InvalidSnapshot, match=r"^snapshot is not valid JSON: nested too deep"):
            Analytics.from_snapshot(text)
    finally:
        sys.setrecursionlimit(limit)
