"""The alerts' Celery task: one delivery, retried by Celery with capped backoff. Its name stays
``fleet.tasks.*`` like the pipeline's own tasks."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from fleet.alerts import channels


@shared_task(name="fleet.tasks.deliver_alert", bind=True, max_retries=channels.MAX_RETRIES, ignore_result=True)
def deliver_alert(self: Any, delivery_id: int) -> str | None:
    """Send one delivery (email or webhook); a transient failure retries, at most MAX_RETRIES times.
    Returns the delivery's state, or None when it was gone or settled already."""
    final = self.request.retries >= self.max_retries
    try:
        delivery = channels.deliver(delivery_id, final=final)
    except channels.TransientDeliveryError as exc:
        raise self.retry(countdown=channels.backoff(self.request.retries), exc=exc)
    return delivery.state if delivery else None
