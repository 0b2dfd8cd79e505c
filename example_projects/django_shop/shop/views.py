"""Shop views: the automatic page calls come from the middleware, the rest is explicit."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from segment_core.scope import Analytics, start_thread
from shop.cart import MAX_QUANTITY, Cart
from shop.catalog import CURRENCY, PRODUCTS, by_id, by_slug
from shop.tasks import send_order_confirmation

SHIPPING = 4.90


class ShopRequest(HttpRequest):
    """A request as ``segment_django.middleware.SegmentMiddleware`` hands it to views."""

    analytics: Analytics


def product_list(request: ShopRequest) -> HttpResponse:
    return render(request, "shop/product_list.html", {"products": PRODUCTS})


def product_detail(request: ShopRequest, slug: str) -> HttpResponse:
    product = by_slug(slug)
    if product is None:
        raise Http404("no such product")
    request.analytics.track("Product Viewed", product.properties())
    return render(request, "shop/product_detail.html", {"product": product})


def cart(request: ShopRequest) -> HttpResponse:
    return render(request, "shop/cart.html", {"cart": Cart(request.session)})


@require_POST
def add_to_cart(request: ShopRequest, product_id: str) -> HttpResponse:
    product = by_id(product_id)
    if product is None:
        raise Http404("no such product")
    try:
        quantity = max(1, min(int(request.POST.get("quantity", "1")), MAX_QUANTITY))
    except ValueError:
        quantity = 1
    added = Cart(request.session).add(product, quantity)
    if added:  # what the cart took (a full line takes none): the Spec's quantity
        request.analytics.track("Product Added", product.properties(added))
    return redirect("shop:cart")


@require_POST
@login_required
def checkout(request: ShopRequest) -> HttpResponse:
    basket = Cart(request.session)
    lines = basket.lines
    if not lines:
        return redirect("shop:cart")
    order_id = "ord_" + secrets.token_hex(6)
    revenue = float(basket.total)
    total = round(revenue + SHIPPING, 2)
    # A real shop would take the payment here and store the order.
    request.analytics.track(
        "Order Completed",
        {
            "order_id": order_id,
            "total": total,
            "revenue": revenue,
            "shipping": SHIPPING,
            "currency": CURRENCY,
            "products": [line.product.properties(line.quantity) for line in lines],
        },
    )
    basket.clear()
    request.session["last_order"] = {"order_id": order_id, "total": total}
    confirm = (order_id, getattr(request.user, "email", ""), total)
    if settings.CELERY_BROKER_URL:
        # A worker sends it; the task's events join this visitor's.
        send_order_confirmation.delay(*confirm)
    else:  # no broker configured: a thread of this process, for the same visitor
        start_thread(send_order_confirmation, *confirm)
    return redirect("shop:order_complete", order_id=order_id)


@login_required
def order_complete(request: ShopRequest, order_id: str) -> HttpResponse:
    order = request.session.get("last_order")
    if not order or order["order_id"] != order_id:
        raise Http404("no such order")
    return render(request, "shop/order_complete.html", {"order": order, "currency": CURRENCY})


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers (and the demo): excluded from page calls by default."""
    return HttpResponse("ok", content_type="text/plain")
