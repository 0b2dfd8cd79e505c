"""The spool's options under their Django names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

import segment_django
from segment_django.middleware import SegmentMiddleware


def test_spool_keys_reach_the_client(settings: Any, tmp_path: Path) -> None:
    settings.SEGMENT = {
        "WRITE_KEY": "k",
        "SEND": False,
        "SPOOL_DIR": tmp_path,
        "SPOOL_MAX_BYTES": 8 * 1024 * 1024,
        "SPOOL_FSYNC": "interval",
    }
    config = segment_django.get_client().config
    assert (config.spool_dir, config.spool_max_bytes, config.spool_fsync) == (
        str(tmp_path),
        8 * 1024 * 1024,
        "interval",
    )


def test_a_bad_spool_value_names_the_setting(settings: Any) -> None:
    settings.SEGMENT = {"WRITE_KEY": "k", "SEND": False, "SPOOL_FSYNC": "sometimes"}
    with pytest.raises(ImproperlyConfigured, match="SPOOL_FSYNC"):
        SegmentMiddleware(lambda request: None)
