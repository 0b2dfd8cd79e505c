"""A hooks module with a bug that fails as it is imported (for the options' errors)."""

from __future__ import annotations

raise RuntimeError("a bug in the hooks module")
