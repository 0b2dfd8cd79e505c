"""Who may talk to the collector: its own host names, its write key, its own pages.

A collector runs on a developer's machine while they browse the web, so a page of
any site could try to drive it. Three checks, applied before any route runs:

* ``Host`` must name the collector itself (``localhost``, ``127.0.0.1``,
  ``[::1]``, the address it listens on, or a name given with ``allowed_hosts``),
  with any port: one reached through a port forward (``docker -p 9000:8765``,
  ``kubectl port-forward``, ``ssh -L``) is named with the forwarded port. The name
  defeats DNS rebinding, where a hostile name resolves to 127.0.0.1 and the
  browser then treats the collector as that site.
* With a write key, every route (not only ``/v1/*``) needs it: HTTP Basic with the
  key as user name, as Segment's API takes it. The page's 401 asks the browser
  for it, and the browser then sends it with the page's own requests.
* The control routes (reset, faults) refuse requests from pages of other origins:
  a form or ``fetch`` from one carries an ``Origin`` or ``Sec-Fetch-Site`` that
  says so. That includes pages of the same site on another port
  (``http://localhost:3000`` against a collector on ``localhost:8765`` sends
  ``Sec-Fetch-Site: same-site``): any local server could serve one.
  ``allow_remote_control`` lifts this check, and those routes then answer pages
  of other origins with CORS.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from segment_core.spec import is_ip_address

__all__ = [
    "LOCAL_NAMES",
    "allowed_host_name",
    "basic_user",
    "host_allowed",
    "is_cross_origin",
    "key_matches",
]

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_allowed(
    host_header: str | None,
    server: tuple[str, int] | None,
    allowed_hosts: Collection[str] = (),
) -> bool:
    """True when ``Host`` names this collector: a local or allowed name, with any
    port (a port forward's included).

    ``server`` is the ASGI scope's ``(address, port)`` the request arrived on.
    ``"*"`` in ``allowed_hosts`` allows every name.
    """
    if "*" in allowed_hosts:
        return True
    if not host_header:
        return False
    name, _ = _split_host(host_header)
    if name is None:
        return False
    names = set(LOCAL_NAMES) | {h.lower().strip("[]") for h in allowed_hosts}
    if server is not None and server[0] not in ("0.0.0.0", "::", ""):
        names.update(_address_names(server[0]))
    return name in names


def _address_names(address: str) -> tuple[str, ...]:
    """The names a client may give an address the collector was reached on.

    A dual-stack socket (``host="::"``) sees an IPv4 client's connection arrive on
    the IPv4-mapped form (``::ffff:10.0.0.5``); the client names it ``10.0.0.5``.
    """
    bare = address.lower().strip("[]")
    if not bare.startswith("::ffff:"):
        return (bare,)
    try:
        mapped = ipaddress.IPv6Address(bare).ipv4_mapped
    except ValueError:
        return (bare,)
    return (bare,) if mapped is None else (bare, str(mapped))


def allowed_host_name(text: str) -> str:
    """``text`` checked as an entry of ``allowed_hosts``: a host name or address, or ``"*"``.

    Raises ValueError for what could never match a ``Host`` name: a port, a
    scheme or a path (any port is accepted with the name).
    """
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if text == "*" or is_ip_address(bare):
        return text
    if text and not any(character in _NOT_IN_HOST_NAMES for character in text):
        return text
    name, _ = _split_host(text.split("://", 1)[-1].split("/", 1)[0])
    hint = f"; use {name!r}" if name and name != text else ""
    raise ValueError(
        f"takes a host name or address ('*': any), without a port or scheme (it is "
        f"accepted with any port); got {text!r}{hint}"
    )


_NOT_IN_HOST_NAMES = frozenset(":/@?#[]* \t")


def _split_host(host_header: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit("//" + host_header.strip())
        name, port = parts.hostname, parts.port
    except ValueError:
        return None, None
    if not name or parts.username is not None or parts.path or parts.query:
        return None, None
    return name.lower(), port


def is_cross_origin(headers: Mapping[str, str], host_header: str | None) -> bool:
    """True when the browser says the request comes from a page of another origin.

    A page of the same site on another port is one (``Sec-Fetch-Site: same-site``).
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin == "null":  # sandboxed frames, file: pages, privacy redirects
        return True
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return True
    return not host_header or netloc != host_header.strip().lower()


def basic_user(authorization: str | None) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header, if it is one."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def key_matches(given: str | None, expected: str) -> bool:
    """Compare write keys in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
