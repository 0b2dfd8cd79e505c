"""What the ``segment status`` commands show: configuration, secrets masked, and a probe.

A command runs in its own process, so the counters of its client say nothing of
the server's: the report shows only what the command can know, the effective
configuration and whether the host answers. The probe is a plain ``GET`` of the
host's base URL with a short time limit; it sends no write key and no event. It goes
the way the client's batches go (the same proxy, the same CA certificates), so
that it answers for them. Any HTTP answer means the host is reachable; a
connection or TLS error means not.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import urllib3

from segment_core._clock import monotonic
from segment_core.config import Config
from segment_core.hosts import redact_url
from segment_core.http_exchange import SteadyTimeout, connection_pool, exchange

__all__ = [
    "PROBE_TIMEOUT_SECONDS",
    "HostProbe",
    "displayable",
    "probe_host",
    "status_lines",
    "status_report",
]

PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class HostProbe:
    """The outcome of one probe of the host."""

    url: str
    reachable: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "reachable": self.reachable, "detail": self.detail}


def probe_host(config: Config, timeout: float = PROBE_TIMEOUT_SECONDS) -> HostProbe:
    """``GET`` the host's base URL once, as the client's batches reach it, waiting at
    most ``timeout`` seconds in all."""
    url = config.host.rstrip("/") + "/"
    shown = redact_url(url)
    outcome: list[HostProbe] = []
    # urllib3's timeout bounds each read, not the answer: a host sending its headers a
    # byte at a time would hold the command for as long as it likes. The probe runs
    # on a daemon thread, left to itself once the time is up.
    probe = threading.Thread(
        target=lambda: outcome.append(_probe(config, url, shown, timeout)),
        name="segment-status-probe",
        daemon=True,
    )
    probe.start()
    probe.join(timeout)
    if not outcome:
        return HostProbe(shown, False, f"no answer within {timeout:g} s")
    return outcome[0]


def _probe(config: Config, url: str, shown: str, timeout: float) -> HostProbe:
    pool = connection_pool(url, config, size=1)
    started = monotonic()
    try:
        answer = exchange(
            pool,
            "GET",
            url,
            headers={"User-Agent": "segment-web status"},
            timeout=SteadyTimeout(total=timeout),
            body_limit=0,
        )
    except urllib3.exceptions.HTTPError as error:
        return HostProbe(shown, False, f"{type(error).__name__}: {_short(error)}")
    finally:
        pool.clear()
    elapsed = (monotonic() - started) * 1000
    return HostProbe(shown, True, f"answered HTTP {answer.status} in {elapsed:.0f} ms")


def status_report(
    config: Config, *, probe: bool = True, timeout: float = PROBE_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """The client's effective options (secrets masked) and, unless ``probe`` is off,
    whether the host answers."""
    report: dict[str, Any] = {
        "enabled": config.enabled,
        "client": displayable(config.public_dict()),
    }
    if probe:
        report["host_check"] = probe_host(config, timeout).as_dict()
    return report


def status_lines(report: Mapping[str, Any]) -> list[str]:
    """``report`` as indented lines for a terminal."""
    lines = []
    for section, values in report.items():
        if isinstance(values, Mapping):
            lines.append(f"{section}:")
            lines.extend(f"  {key}: {value}" for key, value in values.items())
        else:
            lines.append(f"{section}: {values}")
    return lines


def displayable(value: Any) -> Any:
    """``value`` as JSON-friendly data: hooks by name, patterns as text."""
    if isinstance(value, re.Pattern):
        return value.pattern
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: displayable(getattr(value, f.name)) for f in fields(value) if f.init}
    if isinstance(value, (tuple, list, set, frozenset)):
        return [displayable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): displayable(v) for k, v in value.items()}
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _short(error: Exception, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
