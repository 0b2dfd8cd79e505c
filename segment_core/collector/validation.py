"""The collector's view of the Spec rules, which live in :mod:`segment_core.spec`."""

from __future__ import annotations

from segment_core import spec
from segment_core.spec import MAX_MESSAGE_ID_LENGTH, MESSAGE_TYPES, is_iso8601

__all__ = ["MAX_MESSAGE_ID_LENGTH", "MESSAGE_TYPES", "is_iso8601", "validate_message"]


def validate_message(message: object) -> list[str]:
    """Why the collector marks ``message`` bad: the Spec's rules the client holds
    every message to (:func:`segment_core.spec.validate_message`), then the types of
    the reserved traits (:func:`segment_core.spec.reserved_field_problems`); an
    empty list for a good one. Never raises."""
    return spec.validate_message(message) + spec.reserved_field_problems(message)
