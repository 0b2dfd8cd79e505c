from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "segment-web"
try:
    VERSION = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"
