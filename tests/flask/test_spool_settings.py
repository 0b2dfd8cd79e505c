"""The spool's options under their Flask names."""

from __future__ import annotations

from pathlib import Path

import pytest

from segment_flask import SegmentFlask, get_state
from tests.flask.app import create_app


def test_spool_keys_reach_the_client(tmp_path: Path) -> None:
    app = create_app(
        {
            "SEGMENT_WRITE_KEY": "k",
            "SEGMENT_SEND": False,
            "SEGMENT_SPOOL_DIR": str(tmp_path),
            "SEGMENT_SPOOL_FSYNC": "always",
        }
    )
    SegmentFlask(app)
    config = get_state(app).client.config
    assert (config.spool_dir, config.spool_fsync) == (str(tmp_path), "always")


def test_a_bad_spool_value_names_the_key() -> None:
    app = create_app({"SEGMENT_SEND": False, "SEGMENT_SPOOL_MAX_BYTES": 10})
    with pytest.raises(ValueError, match=r"SEGMENT_SPOOL_MAX_BYTES'\]: spool_max_bytes must be"):
        SegmentFlask(app)
