"""A cart kept in the session: ``{product_id: quantity}``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.sessions.backends.base import SessionBase

from shop.catalog import Product, by_id

SESSION_KEY = "cart"
MAX_QUANTITY = 10


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    def __init__(self, session: SessionBase) -> None:
        self._session = session
        self._quantities: dict[str, int] = dict(session.get(SESSION_KEY, {}))

    def add(self, product: Product, quantity: int) -> int:
        """Add up to ``quantity`` (a line holds at most MAX_QUANTITY); how many it took."""
        current = self._quantities.get(product.product_id, 0)
        self._quantities[product.product_id] = min(current + quantity, MAX_QUANTITY)
        self._save()
        return self._quantities[product.product_id] - current

    def clear(self) -> None:
        self._quantities = {}
        self._save()

    @property
    def lines(self) -> list[Line]:
        lines = []
        for product_id, quantity in self._quantities.items():
            product = by_id(product_id)
            if product is not None:  # a product withdrawn since it was added
                lines.append(Line(product, quantity))
        return lines

    @property
    def total(self) -> Decimal:
        return sum((line.subtotal for line in self.lines), Decimal("0.00"))

    def __len__(self) -> int:
        return sum(line.quantity for line in self.lines)

    def _save(self) -> None:
        self._session[SESSION_KEY] = self._quantities
