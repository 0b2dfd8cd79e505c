"""``flask segment status`` and ``flask segment flush``.

``status`` prints the app's client options (the write key masked), its web
options and the client's counters; ``flush`` sends what the client holds and
waits for it. Both act on the client of the process they run in: a CLI
process's own client, or a long-running worker's when called from its code.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from segment_core.web import WebOptions
from segment_flask._extension import get_state

__all__ = ["segment_cli"]

segment_cli = AppGroup("segment", help="Segment analytics: show the setup, deliver events.")


@segment_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Show the client's options (write key masked), the web options and the counters."""
    state = get_state()
    report: dict[str, Any] = {
        "app": current_app.name,
        "shared_client": not state.owns_client,
        "client": {k: _shown(v) for k, v in state.client.config.public_dict().items()},
        "web": web_options_dict(state.options),
        "stats": {k: _shown(v) for k, v in state.client.stats().items()},
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    enabled = "enabled" if state.client.config.enabled else "DISABLED (no write key or send off)"
    click.echo(f"Segment for app {report['app']!r}: client {enabled}")
    for section in ("client", "web", "stats"):
        click.echo(f"{section}:")
        for key, value in report[section].items():
            click.echo(f"  {key}: {value}")


@segment_cli.command("flush")
@click.option(
    "--timeout",
    type=float,
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
    return {f.name: _shown(getattr(options, f.name)) for f in fields(options) if f.init}


def _shown(value: Any) -> Any:
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, (tuple, list)):
        return [_shown(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
