"""The command line: `python -m segment_core.collector` and `segment-collector`."""

from __future__ import annotations

import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from segment_core.collector import CollectorHandle
from segment_core.masking import masked_with_fingerprint
from tests.collector.helpers import DROP, assert_error, batch, message, post

pytestmark = pytest.mark.slow

START_TIMEOUT = 20.0


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next line the process prints, waiting at most `timeout` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"the collector printed nothing within {timeout}s")
    return process.stdout.readline()


@contextmanager
def collector_process(
    tmp_path: Path, *args: str, log_name: str = "collector.log", write_key: str | None = None
) -> Iterator[CollectorHandle]:
    """Start the collector CLI on a free port; yield a handle; terminate it."""
    log = tmp_path / log_name
    with (
        log.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "segment_core.collector", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        try:
            line = read_line(process, START_TIMEOUT)
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            assert match, f"unexpected first line {line!r}; log: {log.read_text()}"
            yield CollectorHandle.connect(match.group(0), write_key=write_key)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
    assert "Traceback" not in log.read_text(), log.read_text()


def test_cli_receives_and_answers_queries(tmp_path: Path) -> None:
    sent = message()
    with collector_process(tmp_path) as collector:
        assert int(collector.url.rsplit(":", 1)[1]) > 0
        assert post(collector.url, batch(sent), auth=("k", "")).status_code == 200
        [event] = collector.wait_for(1)
        assert event["message"] == sent
        assert event["writeKeySource"] == "basic"
        assert collector.summary()["good"] == 1


def test_cli_write_key(tmp_path: Path) -> None:
    args = ("--write-key", "secret")
    with collector_process(tmp_path, *args, write_key="secret") as collector:
        assert_error(post(collector.url, batch(message()), auth=("other", "")), 401, "unauthorized")
        assert post(collector.url, batch(message()), auth=("secret", "")).status_code == 200
        assert collector.summary()["total"] == 1
        for path in ("/", "/collector/summary", "/collector/events"):
            answer = requests.get(collector.url + path, timeout=10)
            assert answer.status_code == 401, path
            assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_cli_db_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    sent = message()
    with collector_process(tmp_path, "--db", str(db)) as collector:
        post(collector.url, batch(sent))
        collector.wait_for(1)
    with collector_process(tmp_path, "--db", str(db)) as collector:
        assert collector.event(sent["messageId"])["message"] == sent


def test_cli_forwards_to_another_collector(tmp_path: Path) -> None:
    with (
        collector_process(tmp_path, log_name="upstream.log") as upstream,
        collector_process(tmp_path, "--forward", upstream.url, log_name="relay.log") as relay,
    ):
        good, bad = message(), message(event=DROP)
        assert post(relay.url, batch(good, bad), auth=("key-9", "")).status_code == 200
        [forwarded] = upstream.wait_for(1)
        assert forwarded["message"] == good
        assert (forwarded["writeKey"], forwarded["writeKeySource"]) == (
            masked_with_fingerprint("key-9"),
            "basic+body",
        )
        deadline = time.monotonic() + 10
        while relay.summary()["forwarded"]["sent"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert relay.summary()["forwarded"] == {
            "sent": 1,
            "failed": 0,
            "dropped": 0,
            "too_large": 0,
        }
        assert upstream.summary()["total"] == 1  # the bad message stayed behind


def test_console_script_help() -> None:
    script = Path(sys.executable).parent / "segment-collector"
    if not script.exists():
        pytest.skip("the segment-collector console script is not installed in this environment")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for option in ("--host", "--port", "--db", "--write-key", "--forward", "--max-events"):
        assert option in result.stdout
    assert "100,000 in memory" in result.stdout


def test_cli_refuses_a_busy_port(tmp_path: Path) -> None:
    with collector_process(tmp_path) as collector:
        port = collector.url.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "segment_core.collector", "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "cannot listen" in result.stderr


def test_cli_stops_promptly_with_a_page_open(tmp_path: Path) -> None:
    with collector_process(tmp_path) as collector:
        stream = requests.get(collector.url + "/collector/stream", stream=True, timeout=10)
    with stream:
        assert stream.status_code == 200
    log = (tmp_path / "collector.log").read_text()
    assert "timeout graceful shutdown exceeded" not in log, log


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--port", "70000"], 2, "argument --port: a port is 0 to 65535, got 70000"),
        (["--port", "http"], 2, "argument --port: not a port number"),
        (
            ["--forward", "notaurl"],
            2,
            "argument --forward: forward must be an http:// or https:// URL",
        ),
        (
            ["--forward", "http://u:p@127.0.0.1:9"],
            2,
            "--forward: forward must not hold credentials",
        ),
        (["--db", "/nonexistent/dir/events.db"], 1, "--db /nonexistent/dir/events.db: "),
        (["--allowed-host", "collector:8765"], 2, "argument --allowed-host: takes a host name"),
        (["--allowed-host", "http://collector"], 2, "argument --allowed-host: takes a host name"),
        (["--max-events", "-1"], 2, "argument --max-events: a number of events"),
        (["--max-events", "many"], 2, "argument --max-events: not a whole number"),
        (["--write-key", "a:b"], 2, "argument --write-key: a write key must not contain ':'"),
        (["--write-key", " key"], 2, "argument --write-key: a write key has spaces"),
    ],
)
def test_bad_arguments_get_one_line_not_a_traceback(args: list[str], code: int, says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "segment_core.collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code
    assert says in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_ctrl_c_stops_it_quietly(tmp_path: Path) -> None:
    log = tmp_path / "collector.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "segment_core.collector", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        assert "listening on http://127.0.0.1:" in read_line(process, START_TIMEOUT)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    assert "Traceback" not in log.read_text(), log.read_text()


def test_max_events_bounds_a_long_run(tmp_path: Path) -> None:
    sent = [message() for _ in range(5)]
    with collector_process(tmp_path, "--max-events", "2") as collector:
        post(collector.url, batch(*sent[:3]))
        post(collector.url, batch(*sent[3:]))
        held = collector.wait_for(2)
        assert [e["messageId"] for e in held] == [m["messageId"] for m in sent[3:]]
        summary = collector.summary()
        assert (summary["total"], summary["forgotten"]) == (5, 3)


def test_on_every_address_it_prints_a_url_that_works(tmp_path: Path) -> None:
    with collector_process(tmp_path, "--host", "0.0.0.0") as collector:
        assert collector.summary()["total"] == 0  # by 127.0.0.1, as printed
    assert "add --allowed-host" in (tmp_path / "collector.log").read_text()


def test_a_bad_db_is_named_even_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = ["-m", "segment_core.collector", "--port", port, "--db", "/no/dir/x.db"]
        result = subprocess.run(
            [sys.executable, *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "--db /no/dir/x.db: " in result.stderr, result.stderr
