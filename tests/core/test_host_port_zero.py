"""A base URL on port 0 names no server that could answer: refused where it is given,
naming the option, as ``proxies`` refuses it."""

from __future__ import annotations

import pytest

from segment_core import Client
from segment_core.collector import create_app

PORT_ZERO = ["http://127.0.0.1:0", "https://api.example:0/segment"]


@pytest.mark.parametrize("url", PORT_ZERO)
@pytest.mark.parametrize("option", ["host", "oauth_auth_server"])
def test_a_client_option_on_port_0_is_refused_naming_it(option: str, url: str) -> None:
    with pytest.raises(ValueError, match=f"^{option} must not have port 0"):
        Client("key", **{option: url})


@pytest.mark.parametrize("url", PORT_ZERO)
def test_a_forward_url_on_port_0_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ValueError, match=r"^forward must not have port 0"):
        create_app(forward=url)
