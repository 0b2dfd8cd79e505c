"""A long run stays bounded in bytes too: large events are forgotten, oldest first,
once the messages held pass `max_bytes`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from segment_core.collector import create_app, run_in_background
from segment_core.collector.store import DEFAULT_MAX_BYTES_IN_MEMORY
from tests.collector.helpers import batch, message, post

# Messages of some 10 KB: two fit in 25,000 bytes, three do not.
PADDING = "x" * 10_000
MAX_BYTES = 25_000


def large_message() -> dict[str, Any]:
    return message(properties={"padding": PADDING})


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["messageId"] for event in events]


def test_the_oldest_events_beyond_max_bytes_are_forgotten() -> None:
    sent = [large_message() for _ in range(5)]
    with run_in_background(max_bytes=MAX_BYTES) as collector:
        assert post(collector.url, batch(*sent[:3])).status_code == 200
        assert ids(collector.events()) == ids(sent[1:3])
        assert post(collector.url, batch(*sent[3:])).status_code == 200
        assert ids(collector.events()) == ids(sent[3:])
        summary = collector.summary()
        assert (summary["total"], summary["good"], summary["forgotten"]) == (5, 5, 3)


def test_the_newest_event_is_kept_even_past_max_bytes_alone() -> None:
    small = [message() for _ in range(3)]
    big = message(properties={"padding": "x" * 30_000})
    with run_in_background(max_bytes=MAX_BYTES) as collector:
        assert post(collector.url, batch(*small)).status_code == 200
        assert post(collector.url, batch(big)).status_code == 200
        assert ids(collector.events()) == ids([big])
        assert collector.summary()["forgotten"] == 3
        collector.wait_for(1, event=big["event"], timeout=5)


def test_the_count_bound_still_holds_beside_the_bytes() -> None:
    sent = [message() for _ in range(4)]
    with run_in_background(max_events=2, max_bytes=MAX_BYTES) as collector:
        assert post(collector.url, batch(*sent)).status_code == 200
        assert ids(collector.events()) == ids(sent[2:])


def test_a_file_reopened_counts_the_bytes_it_holds(tmp_path: Path) -> None:
    db = str(tmp_path / "events.sqlite3")
    sent = [large_message() for _ in range(3)]
    with run_in_background(db=db) as first:  # no bound in a file
        assert post(first.url, batch(*sent[:2])).status_code == 200
    with run_in_background(db=db, max_bytes=MAX_BYTES) as second:
        assert post(second.url, batch(sent[2])).status_code == 200
        assert ids(second.events()) == ids(sent[1:])
        assert second.summary()["forgotten"] == 1


@pytest.mark.parametrize(
    ("options", "bound"),
    [({}, DEFAULT_MAX_BYTES_IN_MEMORY), ({"db": "events.sqlite3"}, 0), ({"max_bytes": 0}, 0)],
)
def test_max_bytes_defaults_to_a_bound_in_memory_only(
    tmp_path: Path, options: dict[str, Any], bound: int
) -> None:
    if "db" in options:
        options = {"db": str(tmp_path / options["db"])}
    app = create_app(**options)
    try:
        assert app.store.max_bytes == bound  # 0: no limit
    finally:
        app.close()


@pytest.mark.parametrize("max_bytes", [-1, 2.5, True, "10"])
def test_max_bytes_must_be_a_count(max_bytes: object) -> None:
    with pytest.raises(ValueError, match="max_bytes must be a whole number of bytes"):
        create_app(max_bytes=max_bytes)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "says"),
    [("-1", "argument --max-bytes: a number of bytes"), ("256MB", "not a whole number")],
)
def test_the_command_line_checks_max_bytes(value: str, says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "segment_core.collector", "--max-bytes", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
def test_the_command_line_bounds_the_bytes(tmp_path: Path) -> None:
    from tests.collector.test_cli import collector_process

    sent = [large_message() for _ in range(3)]
    with collector_process(tmp_path, "--max-bytes", str(MAX_BYTES)) as collector:
        assert post(collector.url, batch(*sent)).status_code == 200
        assert ids(collector.events()) == ids(sent[1:])
