"""``Traits``, ``Properties`` and ``Integrations``: dicts with chainable setters for
the Spec's reserved names.

>>> Traits().set_name("Michael Bolton").set_email("mbolton@example.com")
{'name': 'Michael Bolton', 'email': 'mbolton@example.com'}
>>> Properties().set_revenue(10).set_currency("USD").set("coupon_used", True)
{'revenue': 10, 'currency': 'USD', 'coupon_used': True}
>>> Integrations().disable_all().enable("Mixpanel")
{'All': False, 'Mixpanel': True}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from segment_core.errors import InvalidMessage
from segment_core.jsonvalues import describe, read_dict, read_list
from segment_core.messages import camel_case, struct_fields
from segment_core.spec import is_lazy_text, path_to

__all__ = ["Integrations", "Properties", "Traits"]

_B = TypeVar("_B", bound="_Builder")


def _as_named(name: str) -> str:
    return name


def _mapping(
    field: str, value: object, name_of: Callable[[str], str] = _as_named
) -> dict[str, Any]:
    """``value`` as a dict of its own, or InvalidMessage naming ``field``.

    A dataclass instance (as Go's ``Product`` and ``Address`` structs) gives its
    fields as ``name_of`` names them, unset (None) ones left out, as Go's
    ``omitempty`` does: an unset field clears no trait downstream.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return struct_fields(value, field, name_of)
    if not isinstance(value, Mapping):
        raise InvalidMessage(f"{field} must be a dict, got {type(value).__name__}")
    return read_dict(value, field)


class _Builder(dict[str, Any]):
    # A copy or a merge is a builder of the same kind (dict's own give a plain dict),
    # so a shared base can be copied, then set on: ``base.copy().set_revenue(10)``.

    def set(self: _B, key: str, value: Any) -> _B:
        """Set any key; returns ``self`` so calls chain."""
        self[key] = value
        return self

    def copy(self: _B) -> _B:
        return type(self)(self)

    def __or__(self: _B, other: object) -> _B:  # type: ignore[override]
        if not isinstance(other, dict):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self: _B, other: object) -> _B:  # type: ignore[override]
        if not isinstance(other, dict):
            return NotImplemented
        merged = type(self)(other)
        merged.update(self)
        return merged


class Traits(_Builder):
    """Traits of a user or a group (identify and group calls)."""

    def set_address(self, address: Mapping[str, Any]) -> Traits:
        # The Spec's address is camelCase (postalCode); its company and products are not.
        return self.set("address", _mapping("traits.address", address, camel_case))

    def set_age(self, age: int) -> Traits:
        return self.set("age", age)

    def set_avatar(self, url: str) -> Traits:
        return self.set("avatar", url)

    def set_birthday(self, birthday: dt.date | str) -> Traits:
        return self.set("birthday", birthday)

    def set_company(self, company: Mapping[str, Any]) -> Traits:
        return self.set("company", _mapping("traits.company", company))

    def set_created_at(self, created_at: dt.datetime | str) -> Traits:
        return self.set("createdAt", created_at)

    def set_description(self, description: str) -> Traits:
        return self.set("description", description)

    def set_email(self, email: str) -> Traits:
        return self.set("email", email)

    def set_employees(self, employees: int) -> Traits:
        return self.set("employees", employees)

    def set_first_name(self, first_name: str) -> Traits:
        return self.set("firstName", first_name)

    def set_gender(self, gender: str) -> Traits:
        return self.set("gender", gender)

    def set_id(self, id: str) -> Traits:
        return self.set("id", id)

    def set_industry(self, industry: str) -> Traits:
        return self.set("industry", industry)

    def set_last_name(self, last_name: str) -> Traits:
        return self.set("lastName", last_name)

    def set_name(self, name: str) -> Traits:
        return self.set("name", name)

    def set_phone(self, phone: str) -> Traits:
        return self.set("phone", phone)

    def set_plan(self, plan: str) -> Traits:
        return self.set("plan", plan)

    def set_title(self, title: str) -> Traits:
        return self.set("title", title)

    def set_username(self, username: str) -> Traits:
        return self.set("username", username)

    def set_website(self, website: str) -> Traits:
        return self.set("website", website)


class Properties(_Builder):
    """Properties of a track, page or screen call."""

    def set_category(self, category: str) -> Properties:
        return self.set("category", category)

    def set_coupon(self, coupon: str) -> Properties:
        return self.set("coupon", coupon)

    def set_currency(self, currency: str) -> Properties:
        return self.set("currency", currency)

    def set_discount(self, discount: float) -> Properties:
        return self.set("discount", discount)

    def set_keywords(self, keywords: Sequence[str]) -> Properties:
        if isinstance(keywords, (str, bytes)) or not isinstance(keywords, Iterable):
            raise InvalidMessage(
                f"properties.keywords must be a list of strings, got {type(keywords).__name__}"
            )
        words = read_list(keywords, "properties.keywords")
        for index, word in enumerate(words):
            if not isinstance(word, str) and not is_lazy_text(word):
                raise InvalidMessage(
                    f"properties.keywords[{index}] must be a string, got {type(word).__name__}"
                )
        return self.set("keywords", words)

    def set_name(self, name: str) -> Properties:
        return self.set("name", name)

    def set_order_id(self, order_id: str) -> Properties:
        return self.set("order_id", order_id)

    def set_path(self, path: str) -> Properties:
        return self.set("path", path)

    def set_price(self, price: float) -> Properties:
        return self.set("price", price)

    def set_product_id(self, product_id: str) -> Properties:
        return self.set("product_id", product_id)

    def set_products(self, products: Sequence[Mapping[str, Any]]) -> Properties:
        if isinstance(products, (str, bytes, Mapping)) or not isinstance(products, Iterable):
            raise InvalidMessage(
                f"properties.products must be a list of dicts, got {type(products).__name__}"
            )
        return self.set(
            "products",
            [
                _mapping(f"properties.products[{i}]", p)
                for i, p in enumerate(read_list(products, "properties.products"))
            ],
        )

    def set_quantity(self, quantity: int) -> Properties:
        return self.set("quantity", quantity)

    def set_referrer(self, referrer: str) -> Properties:
        return self.set("referrer", referrer)

    def set_repeat(self, repeat: bool) -> Properties:
        return self.set("repeat", repeat)

    def set_revenue(self, revenue: float) -> Properties:
        return self.set("revenue", revenue)

    def set_search(self, search: str) -> Properties:
        return self.set("search", search)

    def set_shipping(self, shipping: float) -> Properties:
        return self.set("shipping", shipping)

    def set_sku(self, sku: str) -> Properties:
        return self.set("sku", sku)

    def set_subtotal(self, subtotal: float) -> Properties:
        return self.set("subtotal", subtotal)

    def set_tax(self, tax: float) -> Properties:
        return self.set("tax", tax)

    def set_title(self, title: str) -> Properties:
        return self.set("title", title)

    def set_total(self, total: float) -> Properties:
        return self.set("total", total)

    def set_url(self, url: str) -> Properties:
        return self.set("url", url)

    def set_value(self, value: float) -> Properties:
        return self.set("value", value)


class Integrations(_Builder):
    """The destinations a call goes to (its ``integrations``), by their names in
    Segment (case-sensitive); ``All`` is every destination not named."""

    def set(self, key: str, value: Any) -> Integrations:
        """A destination's flag (True, False) or its own options (a dict), by its name."""
        name = _destination(key)
        if not isinstance(value, bool | Mapping):
            raise InvalidMessage(
                f"{path_to('integrations', name)}: a destination takes True, False or a dict "
                f"of its options, got {describe(value)}"
            )
        # A mapping that is no dict (a MappingProxyType) is sent as the object it holds.
        self[name] = (
            value
            if isinstance(value, bool | dict)
            else read_dict(value, path_to("integrations", name))
        )
        return self

    def enable_all(self) -> Integrations:
        return self.set("All", True)

    def disable_all(self) -> Integrations:
        return self.set("All", False)

    def enable(self, name: str) -> Integrations:
        return self.set(_destination(name), True)

    def disable(self, name: str) -> Integrations:
        return self.set(_destination(name), False)


def _destination(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidMessage(
            f"an integration's name must be a non-empty string, got {describe(name)}"
        )
    return name
