"""``flask segment status`` and ``flask segment flush``.

``status`` prints the app's client options (the write key masked), its web
options, and whether the host answers (exit status 1 when it does not). It
shows no counters: the command's process is not the server's, and its client's
figures would be its own. ``flush`` sends what this process's client holds and
waits for it.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from segment_core.status import PROBE_TIMEOUT_SECONDS, displayable, status_lines, status_report
from segment_core.web import WebOptions
from segment_flask._extension import get_state

__all__ = ["segment_cli"]


class _Seconds(click.ParamType):  # type: ignore[type-arg]
    """A number of seconds above zero (a finite one)."""

    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 < seconds < float("inf"):
            self.fail(f"seconds must be more than 0, got {value}", param, ctx)
        return seconds


_SECONDS = _Seconds()

segment_cli = AppGroup("segment", help="Segment analytics: show the setup, deliver events.")


@segment_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--timeout",
    type=_SECONDS,
    default=PROBE_TIMEOUT_SECONDS,
    help="Seconds to wait for the host.",
)
@click.option("--no-check", is_flag=True, help="Do not contact the host.")
def status(as_json: bool, timeout: float, no_check: bool) -> None:
    """Show the client's options (write key masked), the web options, and probe the host."""
    state = get_state()
    config = state.client.config
    report: dict[str, Any] = {
        "app": current_app.name,
        "shared_client": not state.owns_client,
        **status_report(config, probe=not no_check, timeout=timeout),
        "web": web_options_dict(state.options),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        enabled = "enabled" if config.enabled else "DISABLED (no write key or send off)"
        click.echo(f"Segment for app {report['app']!r}: client {enabled}")
        for line in status_lines({k: report[k] for k in report if k not in ("app", "enabled")}):
            click.echo(line)
    probe = report.get("host_check")
    if probe is not None and not probe["reachable"]:
        raise click.ClickException(f"Segment: the host does not answer: {probe['detail']}")


@segment_cli.command("flush")
@click.option(
    "--timeout",
    type=_SECONDS,
    default=None,
    help="Seconds to wait at most (default: shutdown_timeout).",
)
def flush(timeout: float | None) -> None:
    """Send every event this process's client holds and wait for delivery."""
    client = get_state().client
    if client.flush(timeout):
        click.echo("Segment: every accepted event was delivered.")
        return
    pending = client.stats().get("pending", "some")
    raise click.ClickException(f"Segment: {pending} event(s) still waiting after the timeout.")


def web_options_dict(options: WebOptions) -> dict[str, Any]:
    """The web options as plain values: hooks by name, patterns as text."""
    shown: dict[str, Any] = displayable(options)
    return shown
