from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from shop.cart import Cart


def shop(request: HttpRequest) -> dict[str, Any]:
    """The cart's size, for the header of ``base.html``."""
    return {"cart_size": len(Cart(request.session))}
