"""Work that leaves the request: the order confirmation, sent by a Celery worker."""

from __future__ import annotations

import logging

from celery import shared_task

from segment_core.scope import analytics

logger = logging.getLogger("shop")


@shared_task
def send_order_confirmation(order_id: str, email: str, total: float) -> None:
    """E-mail the confirmation (logged here), then record it for the visitor who ordered.

    ``analytics()`` is bound to that visitor: the task was published during their
    checkout request, so the event carries their ids, ip and user agent.
    """
    logger.info("order confirmation for %s sent to %s", order_id, email or "(no e-mail)")
    analytics().track(
        "Order Confirmation Sent", {"order_id": order_id, "total": total, "channel": "email"}
    )
