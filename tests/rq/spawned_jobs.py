"""Jobs that build no client of their own: a spawned work-horse's calls use the
client it builds from what the worker's settings module set."""

from __future__ import annotations

import segment_core
from segment_core.scope import analytics


def track_as(user_id: str) -> None:
    segment_core.track(user_id, "Spawned Job", {"label": user_id})


def track_for_visitor(label: str) -> None:
    analytics().track("Spawned Job", {"label": label})
