"""Fixtures the spool's tests share (``receiver``, ``make_client`` and ``clients`` come
from tests/core/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_spool_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SEGMENT_SPOOL_DIR", raising=False)
    yield


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"
