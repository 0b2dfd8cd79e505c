from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.client import Client
from segment_core.testing import capture
from segment_core.web import RequestInfo

NAVIGATION_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def make_request(**overrides: Any) -> RequestInfo:
    """A plain browser GET of https://shop.example/products/42, overridable."""
    headers = {"user-agent": BROWSER, "accept": NAVIGATION_ACCEPT}
    headers.update(overrides.pop("headers", {}))
    values: dict[str, Any] = {
        "method": "GET",
        "scheme": "https",
        "host": "shop.example",
        "path": "/products/42",
        "client_addr": "203.0.113.7",
        "route_name": "product-detail",
        "route_template": "/products/<int:pk>",
        "headers": headers,
    }
    values.update(overrides)
    return RequestInfo(**values)


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client("test-key")
    yield client
    client.shutdown(timeout=1)


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    with capture() as messages:
        yield messages
