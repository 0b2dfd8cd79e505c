"""Property-based tests of encoding and batch packing."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_core.batching import batch_body, pack
from segment_core.encoding import decode, encode

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_encoding_round_trips_plain_json(value: Any) -> None:
    # The stdlib parser reads big integers exactly, so it checks every digit was kept.
    assert json.loads(encode(value)) == json.loads(json.dumps(value))
    assert decode(encode(value)) == decode(json.dumps(value))


@settings(max_examples=60)
@given(
    sizes=st.lists(st.integers(min_value=2, max_value=3900), max_size=300),
    max_messages=st.integers(min_value=1, max_value=50),
    max_bytes=st.integers(min_value=4000, max_value=20_000),
)
def test_packing_keeps_every_message_once_in_order_within_limits(
    sizes: list[int], max_messages: int, max_bytes: int
) -> None:
    messages = [json.dumps({"n": n, "pad": "x" * size}).encode() for n, size in enumerate(sizes)]
    batches = pack(messages, max_messages=max_messages, max_bytes=max_bytes)
    assert [m for batch in batches for m in batch] == messages
    for batch in batches:
        assert 1 <= len(batch) <= max_messages
        joined = sum(len(m) for m in batch) + len(batch) - 1
        assert joined <= max_bytes
        body = json.loads(batch_body(batch, write_key="k", sent_at="2024-01-01T00:00:00.000Z"))
        assert [m["n"] for m in body["batch"]] == [json.loads(m)["n"] for m in batch]
    # As few batches as the limits allow: each but the last stopped at a limit.
    for batch, following in itertools.pairwise(batches):
        joined = sum(len(m) for m in batch) + len(batch)  # and the comma before the next
        assert len(batch) == max_messages or joined + len(following[0]) > max_bytes
