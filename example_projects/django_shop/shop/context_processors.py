from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

import segment_django
from shop.cart import Cart


def shop(request: HttpRequest) -> dict[str, Any]:
    """The cart's size for the header, and the analytics.js settings for ``base.html``."""
    # The browser uses the server's write key unless SEGMENT_JS_CONFIG names its own.
    write_key = segment_django.get_client().config.write_key or ""
    js_config = {"writeKey": write_key, **settings.SEGMENT_JS_CONFIG}
    return {
        "cart_size": len(Cart(request.session)),
        "segment_js_url": settings.SEGMENT_JS_URL,
        "segment_js_config": js_config,
    }
