"""``manage.py segment status`` and ``manage.py segment flush``: the verbs of ``flask segment``.

``status`` prints the client's options from ``settings.SEGMENT`` (the write key
masked), the web options and whether the host answers (a failure when it does
not). It shows no counters: this command's process is not the server's.
``flush`` sends what this process's client holds and waits for it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from segment_core.client import Client
from segment_core.status import PROBE_TIMEOUT_SECONDS, displayable, status_lines, status_report
from segment_core.web import WebOptions
from segment_django.conf import built_client, web_options


class Command(BaseCommand):
    help = "Segment analytics: show the setup and probe the host (status), deliver events (flush)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("verb", choices=["status", "flush"], help="what to do")
        parser.add_argument("--json", action="store_true", help="status: print one JSON object")
        parser.add_argument(
            "--timeout",
            type=_seconds,
            default=None,
            help=f"status: seconds to wait for the host ({PROBE_TIMEOUT_SECONDS:g}); "
            "flush: seconds to wait at most (shutdown_timeout)",
        )
        parser.add_argument("--no-check", action="store_true", help="status: do not probe")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verb"] == "flush":
            self._flush(options["timeout"])
        else:
            timeout = options["timeout"]
            self._status(
                as_json=options["json"],
                probe=not options["no_check"],
                timeout=PROBE_TIMEOUT_SECONDS if timeout is None else timeout,
            )

    def _status(self, *, as_json: bool, probe: bool, timeout: float) -> None:
        config = _client().config
        report: dict[str, Any] = {
            **status_report(config, probe=probe, timeout=timeout),
            "web": displayable(_web_options()),
        }
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            enabled = "enabled" if config.enabled else "DISABLED (no write key or send off)"
            self.stdout.write(f"Segment: client {enabled}")
            for line in status_lines({k: v for k, v in report.items() if k != "enabled"}):
                self.stdout.write(line)
        check = report.get("host_check")
        if check is not None and not check["reachable"]:
            raise CommandError(f"Segment: the host does not answer: {check['detail']}")

    def _flush(self, timeout: float | None) -> None:
        client = _client()
        if client.flush(timeout):
            self.stdout.write("Segment: every accepted event was delivered.")
            return
        pending = client.stats().get("pending", "some")
        raise CommandError(f"Segment: {pending} event(s) still waiting after the timeout.")


def _client() -> Client:
    """The client of ``settings.SEGMENT``; a command error says what keeps one from
    being built (where the site's requests go on untracked, logging it once)."""
    try:
        return built_client()
    except ImproperlyConfigured as problem:
        raise CommandError(f"Segment: {problem}") from None


def _web_options() -> WebOptions:
    try:
        return web_options()
    except ImproperlyConfigured as problem:
        raise CommandError(f"Segment: {problem}") from None


def _seconds(text: str) -> float:
    """A number of seconds above zero, for argparse."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be more than 0, got {text}")
    return seconds
