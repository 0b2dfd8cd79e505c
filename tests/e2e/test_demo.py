"""The README's first command: the demo runs the examples on real servers and passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is missing"),
]


def test_the_demo_passes_and_reports_what_it_checked() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "example_projects.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "demo passed" in output
    assert output.count("no secret reached the collector") == 2, output[-5000:]
    assert "attributed to the visitor who ordered" in output
    assert "✗" not in output, output[-5000:]
