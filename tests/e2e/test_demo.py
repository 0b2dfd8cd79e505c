"""The README's first command: the demo runs the examples on real servers and passes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from example_projects import demo
from example_projects._servers import free_port, loopback_session

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-u", "-m", "example_projects.demo"]
DEMO_TIMEOUT = 300.0
KEEP_RUNNING_PROMPT = "Ctrl-C stops the apps"

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is missing"
)


def _environment_with_an_unreachable_proxy() -> dict[str, str]:
    """The caller's environment in a shell whose proxy (for the network) answers nothing."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = nowhere
    return env


def _assert_passed(output: str) -> None:
    assert "demo passed" in output, output[-5000:]
    assert output.count("no secret reached the collector") == 2, output[-5000:]
    assert output.count("attributed to the visitor who ordered") == 2, output[-5000:]
    assert "✗" not in output, output[-5000:]


@pytest.mark.slow
@needs_redis
def test_the_demo_passes_and_reports_what_it_checked() -> None:
    # "No network needed" holds in a shell that exports a proxy for the network too:
    # the demo, the apps and their workers talk to each other on loopback, directly.
    result = subprocess.run(
        DEMO,
        cwd=ROOT,
        env=_environment_with_an_unreachable_proxy(),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    _assert_passed(output)


@pytest.mark.slow
@needs_redis
def test_keep_running_serves_every_app_at_once_until_interrupted(tmp_path: Path) -> None:
    """Both shops and their Celery workers run side by side: each task reaches its own shop."""
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*DEMO, "--keep-running"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        while KEEP_RUNNING_PROMPT not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-5000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-5000:]
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        status = process.wait(DEMO_TIMEOUT)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the demo stops the apps it started
            process.wait(DEMO_TIMEOUT)

    output = log_path.read_text(errors="replace")
    assert status == 0, output[-5000:]
    _assert_passed(output)
    app_urls = re.findall(r"^  \S+ \((?:gunicorn|uvicorn)\)\s+(http://\S+)$", output, re.M)
    assert len(app_urls) == len(demo.EXAMPLES), output[-5000:]
    assert "stopping..." in output
    with loopback_session() as http:
        for url in app_urls:  # stopped on the way out, none left running
            with pytest.raises(requests.ConnectionError):
                http.get(url, timeout=5)


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("70000", "a port is 0 to 65535, got 70000"),
        ("-1", "a port is 0 to 65535, got -1"),
        ("http", "not a port number: 'http'"),
    ],
)
def test_a_port_out_of_range_is_a_usage_error(
    port: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        demo.main([f"--port={port}"])
    assert stopped.value.code == 2
    [usage, error] = capsys.readouterr().err.splitlines()
    assert usage.startswith("usage: scripts/demo")
    assert error.endswith(f"argument --port: {message}")


def test_a_port_in_use_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert demo.main([f"--port={port}"]) == 1
    error = capsys.readouterr().err
    assert f"demo: port {port} is in use (--port 0 takes a free one)" in error
