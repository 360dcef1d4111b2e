"""Celery adapters: take ids, call a service, own the retry policy."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from messaging import services

logger = logging.getLogger(__name__)


class SendTask(Task):
    """Retries transient ESP errors after services.retry_delay (exponential, jittered, bounded)."""

    acks_late = True

    def retry_transient(self, exc: services.TransientSendError) -> None:
        """Schedule the next try, or let the error through when the retries are used up."""
        raise self.retry(
            exc=exc, countdown=services.retry_delay(self.request.retries), max_retries=settings.SEND_MAX_RETRIES
        )

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        ids = kwargs.get("delivery_ids") or kwargs.get("delivery_id") or (args[0] if args else None)
        if not ids:
            return
        if isinstance(ids, str):
            services.delivery_fail(delivery_id=ids, error=f"gave up: {exc!r}")
        else:
            services.deliveries_fail(delivery_ids=ids, error=f"gave up: {exc!r}")


@shared_task(base=SendTask, bind=True, name="messaging.tasks.send_delivery")
def send_delivery(self: SendTask, delivery_id: str) -> None:
    """Send one delivery (confirmation, welcome: the latency-sensitive `welcome` queue)."""
    try:
        services.delivery_send(delivery_id=delivery_id)
    except services.TransientSendError as exc:
        self.retry_transient(exc)


@shared_task(base=SendTask, bind=True, name="messaging.tasks.send_batch")
def send_batch(self: SendTask, delivery_ids: list[str]) -> None:
    """Send a batch of deliveries (nurture, broadcasts: the `bulk` queue); a retry sends only the rest."""
    try:
        services.deliveries_send_batch(delivery_ids=delivery_ids)
    except services.TransientSendError as exc:
        self.retry_transient(exc)


def enqueue_delivery(delivery: Any) -> None:
    send_delivery.delay(str(delivery.id))


def enqueue_retry(delivery: Any) -> None:
    """Enqueue a retried delivery on the queue its kind belongs to."""
    queue = "welcome" if delivery.kind in services.WELCOME_QUEUE_KINDS else "bulk"
    send_delivery.apply_async((str(delivery.id),), queue=queue)


def enqueue_bulk(delivery_ids: Sequence[str], *, batch_size: int = 200) -> None:
    """Send deliveries on the `bulk` queue (nurture, reminders, announcements): one task per batch."""
    ids = [str(delivery_id) for delivery_id in delivery_ids]
    for start in range(0, len(ids), batch_size):
        send_batch.apply_async((ids[start : start + batch_size],), queue="bulk")


@shared_task(name="messaging.tasks.expand_announcement", acks_late=True)
def expand_announcement(announcement_id: int) -> None:
    """Expand a confirmed announcement's audience into deliveries; run again until it is done."""
    from messaging.announcements import announcement_expand

    if not announcement_expand(announcement_id=announcement_id, enqueue_sends=enqueue_bulk):
        expand_announcement.delay(announcement_id)


@shared_task(name="messaging.tasks.start_scheduled_announcements", ignore_result=True)
def start_scheduled_announcements() -> int:
    """Start the announcements whose chosen time has come (beat, every minute)."""
    from messaging.announcements import announcements_start_due

    return announcements_start_due(enqueue=lambda pk: expand_announcement.delay(pk))


def enqueue_batch(delivery_ids: list[Any]) -> None:
    """Send one batch claimed by the tick (already sized) as one task on the `bulk` queue."""
    send_batch.delay([str(delivery_id) for delivery_id in delivery_ids])
