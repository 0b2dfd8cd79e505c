"""The collector's view of the Spec rules, which live in :mod:`segment_core.spec`."""

from __future__ import annotations

from segment_core.spec import MAX_MESSAGE_ID_LENGTH, MESSAGE_TYPES, is_iso8601, validate_message

__all__ = ["MAX_MESSAGE_ID_LENGTH", "MESSAGE_TYPES", "is_iso8601", "validate_message"]
