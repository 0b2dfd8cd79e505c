"""Read back what a rendered analytics.js snippet tells the browser."""

from __future__ import annotations

import json
import re
from typing import Any

_SETTINGS = re.compile(r"\}\)\((\{.*\})\);\n</script>", re.DOTALL)
_SCRIPT = re.compile(r"<script( nonce=\"[^\"]*\")?>\n")


def snippet_settings(html: str) -> dict[str, Any]:
    """The settings object of the one snippet in ``html``."""
    found = _SETTINGS.findall(html)
    assert len(found) == 1, f"expected one snippet in:\n{html}"
    settings: dict[str, Any] = json.loads(found[0])
    return settings


def has_snippet(html: str) -> bool:
    return "analytics._writeKey" in html


def script_tags(html: str) -> list[str]:
    """The opening tags of the snippet's ``<script>`` elements."""
    return [match[0] for match in _SCRIPT.finditer(html)]
