"""What a response that sets the visitor's cookie tells HTTP caches.

The ``ajs_anonymous_id`` cookie names one visitor: a shared cache (a CDN, a
proxy, Django's per-site cache) that stored the response carrying it would hand
that id to every visitor after. ``Vary: Cookie`` does not stop that when the
visitors' ``Cookie`` headers are the same (a consent banner's cookie, a
language's), and Django before 5.2 stores such a response; ``private`` keeps it
out of every shared cache, while the visitor's own browser may still keep it.
Only a new visitor gets the cookie: returning visitors' pages stay cacheable.
"""

from __future__ import annotations

import functools

__all__ = ["cache_control_for_cookie"]


@functools.lru_cache(maxsize=64)
def cache_control_for_cookie(value: str | None) -> str:
    """The ``Cache-Control`` value for a response the visitor's cookie is added to.

    ``value`` is the app's (several header lines joined with ``", "``). ``private``
    is merged into it and ``public`` dropped; a value that already says ``private``
    (so written, with no field names) is left as it is. ``no-store`` gets ``private``
    too: Django's cache middleware before 5.2 stores a ``no-store`` response.

    >>> cache_control_for_cookie("public, max-age=60, s-maxage=600")
    'private, max-age=60, s-maxage=600'
    >>> cache_control_for_cookie(None), cache_control_for_cookie("private, max-age=60")
    ('private', 'private, max-age=60')
    """
    if not value or not value.strip():
        return "private"
    directives = _directives(value)
    if "private" in directives:  # as written: Django's cache looks for it so
        return value
    names = [directive.partition("=")[0].strip().lower() for directive in directives]
    kept = [
        directive for directive, name in zip(directives, names, strict=True) if name not in _DROPPED
    ]
    return ", ".join(("private", *kept))


# ``public`` contradicts ``private``; a ``private`` spelled otherwise is replaced by
# the plain one: ``private="Field"`` keeps only that field from shared caches, and
# Django's cache looks for ``private`` case-sensitively. An empty directive is a
# stray comma.
_DROPPED = frozenset(("public", "private", ""))


def _directives(value: str) -> list[str]:
    """The comma-separated directives of ``value``, stripped; a comma inside a quoted
    string (``no-cache="Set-Cookie, Vary"``) does not end one."""
    directives: list[str] = []
    start, quoted, escaped = 0, False, False
    for index, character in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and character == "\\":
            escaped = True
        elif character == '"':
            quoted = not quoted
        elif character == "," and not quoted:
            directives.append(value[start:index].strip())
            start = index + 1
    directives.append(value[start:].strip())
    return directives
