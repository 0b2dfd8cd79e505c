"""A local Segment-compatible collector, for tests and for watching events arrive.

Run it with `segment-collector` (or `python -m segment_core.collector`), or inside a
test process:

    from segment_core.collector import run_in_background

    with run_in_background() as collector:
        ...  # point a client at collector.url
        [event] = collector.wait_for(1, type="track")
        assert event["status"] == "good", event["reasons"]
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segment_core.collector.app import CollectorApp, create_app
    from segment_core.collector.background import run_in_background
    from segment_core.collector.handle import CollectorError, CollectorHandle
    from segment_core.collector.ingest import Limits
    from segment_core.collector.validation import validate_message

__all__ = [
    "EXTRA_HINT",
    "CollectorApp",
    "CollectorError",
    "CollectorHandle",
    "Limits",
    "create_app",
    "run_in_background",
    "validate_message",
]

EXTRA_HINT = "the local collector needs the 'collector' extra: pip install 'segment-web[collector]'"

#: The collector's own dependencies, which the extra installs.
_EXTRA_MODULES = ("starlette", "uvicorn")

# Imported on first use, so that `segment-collector`, the pytest plugin and the
# names below can say which extra is missing instead of failing while Python
# imports this package.
_HOMES = {
    "CollectorApp": "app",
    "create_app": "app",
    "run_in_background": "background",
    "CollectorError": "handle",
    "CollectorHandle": "handle",
    "Limits": "ingest",
    "validate_message": "validation",
}


#: The modules that serve with Starlette and uvicorn (the others need neither).
_SERVING_MODULES = frozenset({"app", "background"})


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if home in _SERVING_MODULES:
        require_extra_versions()
    try:
        module = importlib.import_module(f"{__name__}.{home}")
    except ModuleNotFoundError as error:
        raise with_extra_hint(error) from None
    return getattr(module, name)


@functools.cache
def require_extra_versions() -> None:
    """ImportError naming the version needed when Starlette or uvicorn is older than
    the extra asks for (a project pinned to an old one), rather than a TypeError
    from deep inside them once the collector starts."""
    from segment_core.adapters import require_framework_version

    for framework in _EXTRA_MODULES:
        require_framework_version(
            adapter="the local collector", framework=framework, extra="collector"
        )


def with_extra_hint(error: ModuleNotFoundError) -> ModuleNotFoundError:
    """``error`` naming the extra's ``pip install`` line when what is missing is one
    of the extra's modules; still a ModuleNotFoundError, for ``except ImportError``
    and its ``name``."""
    if (error.name or "").partition(".")[0] not in _EXTRA_MODULES:
        return error
    return ModuleNotFoundError(f"{error}; {EXTRA_HINT}", name=error.name)
