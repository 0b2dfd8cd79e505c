"""The products on sale: a static list (a real shop would use a model)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CURRENCY = "EUR"


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    slug: str
    name: str
    category: str
    price: Decimal
    description: str

    def properties(self, quantity: int = 1) -> dict[str, Any]:
        """The product as Segment's e-commerce spec describes it."""
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": self.price,  # a Decimal is sent as a JSON number
            "quantity": quantity,
            "currency": CURRENCY,
        }


PRODUCTS = (
    Product(
        "p-101",
        "KET-PO-1",
        "pour-over-kettle",
        "Pour-over kettle",
        "Brewing",
        Decimal("49.00"),
        "A gooseneck kettle for a slow, even pour.",
    ),
    Product(
        "p-102",
        "GRI-HA-2",
        "hand-grinder",
        "Hand grinder",
        "Brewing",
        Decimal("89.50"),
        "Steel burrs, 40 clicks from espresso to cold brew.",
    ),
    Product(
        "p-103",
        "CUP-ES-6",
        "espresso-cups",
        "Espresso cups (set of 6)",
        "Tableware",
        Decimal("24.90"),
        "Thick porcelain that keeps a ristretto warm.",
    ),
)

_BY_ID = {product.product_id: product for product in PRODUCTS}
_BY_SLUG = {product.slug: product for product in PRODUCTS}


def by_id(product_id: str) -> Product | None:
    return _BY_ID.get(product_id)


def by_slug(slug: str) -> Product | None:
    return _BY_SLUG.get(slug)
