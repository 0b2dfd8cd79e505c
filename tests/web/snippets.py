"""Read back what a rendered analytics.js snippet tells the browser."""

from __future__ import annotations

import json
import re
from typing import Any

_SETTINGS = re.compile(r"\}\)\((\{.*\})\);\n//\]\]>\n</script>", re.DOTALL)
_SCRIPT = re.compile(r"<script( nonce=\"[^\"]*\")?>\n")
#: The CDATA section the code is rendered in, its markers in JavaScript comments.
_CDATA = re.compile(r"<script[^>]*>\n//<!\[CDATA\[\n(.*)\n//\]\]>\n</script>", re.DOTALL)


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


def is_inert_stub(html: str) -> bool:
    """Whether ``html`` holds the stub alone: ``window.analytics`` that loads nothing."""
    return "analytics.invoked = true" in html and not has_snippet(html)


def script_code(html: str) -> str:
    """The JavaScript of the one snippet in ``html``, out of its CDATA section."""
    found = _CDATA.findall(html)
    assert len(found) == 1, f"expected one snippet in:\n{html}"
    code: str = found[0]
    return code
