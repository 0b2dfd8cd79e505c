"""The distribution's name and version: the one place the version is written (the
build reads it here), so importing the library reads no package metadata."""

from __future__ import annotations

DISTRIBUTION = "segment-web"
VERSION = "0.1.0"
