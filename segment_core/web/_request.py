"""The neutral request every adapter builds: all the web rules read only this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestInfo"]


@dataclass
class RequestInfo:
    """What the web rules need to know about one HTTP request.

    - ``host``: ``host[:port]`` as the framework trusts it (Django's ``get_host()``);
      an empty host means "unknown": the request is never a page view.
    - ``path`` and ``query_string``: as sent on the wire (percent-encoded), the
      query without its ``?``.
    - ``headers``: a case-insensitive mapping (Django's ``request.headers``,
      Werkzeug's and Starlette's ``Headers``) or a dict with lower-case names.
      Repeated ``X-Forwarded-For`` lines must be joined with ``", "``.
    - ``client_addr``: the socket peer's address (``REMOTE_ADDR``), if known.
    - ``route_name`` / ``route_template``: the matched route's name and pattern.
    - ``user_id``: the user the framework authenticated, if any.
    - ``native``: the framework's own request object, handed to user hooks.

    >>> RequestInfo(host="example.com", path="/a", query_string="b=1").url
    'http://example.com/a?b=1'
    """

    method: str = "GET"
    scheme: str = "http"
    host: str = ""
    path: str = "/"
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    client_addr: str | None = None
    route_name: str | None = None
    route_template: str | None = None
    user_id: str | None = None
    native: Any = None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower-case), or None."""
        return self.headers.get(name)

    @property
    def url(self) -> str:
        """The full URL, without a fragment (and before any redaction)."""
        search = f"?{self.query_string}" if self.query_string else ""
        return f"{self.scheme}://{self.host}{self.path}{search}"

    @property
    def hook_target(self) -> Any:
        """What user hooks receive: the framework's request, else this object."""
        return self if self.native is None else self.native
