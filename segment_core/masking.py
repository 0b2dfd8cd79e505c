"""How secrets (write keys, passwords in URLs) are shown: never whole."""

from __future__ import annotations

import hashlib

__all__ = ["fingerprint", "mask_secret", "masked_with_fingerprint"]

#: Shorter secrets show nothing of themselves: a few characters would be too much.
MIN_SHOWN_LENGTH = 12


def mask_secret(value: str | None) -> str | None:
    """The first four characters and an ellipsis (``"wk_A…"``); ``"…"`` for short ones.

    >>> mask_secret("wk_AbCdEfGhIjKlMnOp")
    'wk_A…'
    """
    if value is None:
        return None
    if not value:
        return ""
    return value[:4] + "…" if len(value) >= MIN_SHOWN_LENGTH else "…"


def fingerprint(value: str) -> str:
    """A short hash that tells secrets apart without showing them: ``sha256:1a2b3c4d``.

    Anyone who knows a key can compute it and compare; 32 bits reveal nothing
    usable about a random key.
    """
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:8]


def masked_with_fingerprint(value: str | None) -> str | None:
    """:func:`mask_secret` and :func:`fingerprint` together: ``"wk_A… sha256:1a2b3c4d"``."""
    if not value:
        return value
    return f"{mask_secret(value)} {fingerprint(value)}"
