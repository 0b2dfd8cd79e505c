from __future__ import annotations

import os

from celery import shared_task

from segment_core.scope import analytics


@shared_task
def send_order_email(order_id: str) -> None:
    analytics().track("Order Email Sent", {"order_id": order_id, "pid": os.getpid()})
