"""A collector started inside a process leaves that process's logging as it was."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from segment_core.collector import run_in_background


def test_run_in_background_keeps_the_processs_log_handlers(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handler = logging.FileHandler(path, mode="w")  # as basicConfig(filename=, filemode="w")
    log = logging.getLogger("tests.an_app")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("before")
        with run_in_background():
            log.info("while it runs")
        log.info("after")
    finally:
        log.removeHandler(handler)
        handler.close()
    assert path.read_text().splitlines() == ["before", "while it runs", "after"]


def test_the_fixture_keeps_the_log_file_of_the_test_run(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            import logging

            log = logging.getLogger("app")


            def test_before():
                log.warning("before the collector")


            def test_with_the_collector(segment_collector):
                log.warning("with the collector")


            def test_after():
                log.warning("after the collector")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SEGMENT"))}
    options = ("-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "--log-file", "run.log")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "--log-file-level", "INFO"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    logged = (tmp_path / "run.log").read_text()
    for line in ("before the collector", "with the collector", "after the collector"):
        assert line in logged, logged
    # As quiet as ever: uvicorn's start-up and shutdown news stay out of it.
    assert "uvicorn" not in logged and "Started server" not in logged, logged
