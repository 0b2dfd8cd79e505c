"""Validation of the options that configure analytics.js in the browser.

``(name, given value) -> stored value`` or a :class:`ValueError` naming the option,
as for every other web option (see ``_validate.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from segment_core.hosts import browser_host_problem, check_host, is_loopback_url, redact_url

__all__ = [
    "BROWSER_NORMALIZERS",
    "DEFAULT_SNIPPET_SRC",
    "PAGE_SOURCES",
    "CspNonce",
    "PageSource",
]

#: Where analytics.js comes from by default: Segment's CDN, one URL per write key.
DEFAULT_SNIPPET_SRC = "https://cdn.segment.com/analytics.js/v1/{write_key}/analytics.min.js"

PAGE_SOURCES = ("server", "browser")
PageSource = Literal["server", "browser"]
#: An attribute path on the framework's request ("csp_nonce", "state.csp_nonce"),
#: or ``callable(request) -> str | None``.
CspNonce = str | Callable[[Any], Any]

logger = logging.getLogger("segment.core.web")

_WRITE_KEY = re.compile(r"^[A-Za-z0-9_\-.:]{1,200}$")
_ATTRIBUTE_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
# A server (its name as the client's host takes it: see check_host) and a path.
_HOST_PATH = re.compile(r"^[^/\s?#@\\<>\"'`]+(?:/[A-Za-z0-9._~\-/%]*)?$")


def _write_key(name: str, value: object) -> str | None:
    if value is None or value == "":  # unset, e.g. from an empty environment variable
        return None
    if not isinstance(value, str) or not _WRITE_KEY.fullmatch(value):
        raise ValueError(
            f"{name} must be the write key of a website (analytics.js) source: letters, "
            f"digits, '-', '_', '.' or ':', got {value!r}"
        )
    return value


def _snippet_src(name: str, value: object) -> str:
    if value is None or value == "":  # as for the client's host: the default
        return DEFAULT_SNIPPET_SRC
    if not isinstance(value, str) or re.search(r"[\s<>\"'`\\]", value) or not value:
        raise ValueError(f"{name} must be a URL without spaces or quotes, got {_shown(value)!r}")
    parts = urlsplit(value)
    relative = not parts.scheme and not parts.netloc and value.startswith("/")
    if not relative and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise ValueError(
            f"{name} must be an http(s) URL, or a path starting with '/', got {_shown(value)!r}"
        )
    _refuse_credentials(name, value, parts)
    if not relative:
        _check_browser_host(name, value, value)
    _warn_plain_http(name, value)
    try:
        value.format(write_key="")
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            f"{name}: {value!r} may hold only the placeholder '{{write_key}}'"
        ) from None
    return value


def _base_url(name: str, value: object) -> str | None:
    """An http(s) URL without a trailing slash, or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or re.search(r"[\s<>\"'`\\]", value):
        raise ValueError(f"{name} must be an http(s) URL, got {_shown(value)!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(
            f"{name} must be an http(s) URL such as 'https://host', got {_shown(value)!r}"
        )
    _refuse_credentials(name, value, parts)
    # As the client's host: analytics.js adds its paths to the value, after a
    # #fragment they would be no path, and no server listens on port 0.
    check_host(value, name=name)
    _check_browser_host(name, value, value)
    _warn_plain_http(name, value)
    return value.rstrip("/")


def _check_browser_host(name: str, url: str, value: str) -> None:
    """ValueError when the browser's URL parser refuses the server of ``url``."""
    problem = browser_host_problem(url)
    if problem is not None:
        raise ValueError(f"{name}: {problem}, got {_shown(value)!r}")


def _shown(value: object) -> object:
    """``value`` as an error shows it: credentials before an ``@`` masked."""
    return redact_url(value) if isinstance(value, str) else value


def _warn_plain_http(name: str, url: str) -> None:
    """A WARNING for an ``http://`` URL of another machine: a page served over
    https may not load a script from it, nor send to it (mixed content)."""
    if url.lower().startswith("http://") and not is_loopback_url(url):
        logger.warning(
            "segment: %s %r is not https: browsers refuse it on an https page "
            "(mixed content), and analytics.js would load or send nothing there",
            name,
            url,
        )


def _refuse_credentials(name: str, value: str, parts: SplitResult) -> None:
    """A URL of the page's holds no ``user:password@``: every visitor would read
    them, and browsers load no script and send no event with them."""
    if "@" in parts.netloc:
        shown = _shown(value)
        raise ValueError(f"{name} must not hold credentials (user:password@), got {shown!r}")


def _api_host(name: str, value: object) -> str | None:
    """Where analytics.js sends events: ``https://host/v1`` or Segment's ``host/v1`` form.

    analytics.js posts to ``<apiHost>/t``: a value without a path gets ``/v1``, the
    API's path, as the server's ``host`` does (``https://host`` posts to ``/v1/batch``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and "://" in value:
        url = _base_url(name, value)
        if url is not None and not urlsplit(url).path:
            url += "/v1"
        return url
    if not isinstance(value, str) or not _HOST_PATH.fullmatch(value):
        raise ValueError(
            f"{name} must be a host and path such as 'events.eu1.segmentapis.com/v1' "
            f"or an https:// URL, got {_shown(value)!r}"
        )
    host = value.rstrip("/")
    try:
        port = urlsplit(f"//{host}").port
    except ValueError:
        port = 0
    if port == 0 and ":" in host.partition("/")[0].rpartition("]")[2]:
        raise ValueError(f"{name} must name a port from 1 to 65535, got {_shown(value)!r}")
    check_host(f"https://{host}", name=name, written=value)  # its server, as with a scheme
    _check_browser_host(name, f"https://{host}", value)
    return host if "/" in host else f"{host}/v1"


def _page_source(name: str, value: object) -> PageSource | None:
    if value is None or value in PAGE_SOURCES:
        return value  # type: ignore[return-value]
    raise ValueError(f"{name} must be 'server', 'browser' or None, got {value!r}")


def _csp_nonce(name: str, value: object) -> CspNonce | None:
    if value is None or callable(value):
        return value
    if isinstance(value, str) and ":" in value:
        from segment_core.web._validate import import_callable

        return import_callable(name, value)
    if isinstance(value, str) and _ATTRIBUTE_PATH.fullmatch(value):
        return value
    raise ValueError(
        f"{name} must be an attribute of the request ('csp_nonce', 'state.csp_nonce'), "
        f"'module:function', a callable or None, got {value!r}"
    )


BROWSER_NORMALIZERS: dict[str, Callable[[str, Any], Any]] = {
    "browser_write_key": _write_key,
    "snippet_src": _snippet_src,
    "browser_api_host": _api_host,
    "browser_cdn": _base_url,
    "page_source": _page_source,
    "csp_nonce": _csp_nonce,
}
