"""How secrets (write keys, passwords in URLs) are shown: never whole."""

from __future__ import annotations

__all__ = ["mask_secret"]

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
