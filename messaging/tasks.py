"""Celery adapters: take ids, call a service, own the retry policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Task, shared_task

from messaging import services


class SendTask(Task):
    autoretry_for = (services.TransientSendError,)
    max_retries = 6
    retry_backoff = 5  # seconds, doubled each time: 5, 10, 20, ... capped below
    retry_backoff_max = 600
    retry_jitter = True
    acks_late = True

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        delivery_id = kwargs.get("delivery_id") or (args[0] if args else None)
        if delivery_id:
            services.delivery_fail(delivery_id=delivery_id, error=f"gave up: {exc!r}")


@shared_task(base=SendTask, name="messaging.tasks.send_delivery")
def send_delivery(delivery_id: str) -> None:
    """Send one delivery (confirmation, welcome: the latency-sensitive `welcome` queue)."""
    services.delivery_send(delivery_id=delivery_id)


def enqueue_delivery(delivery: Any) -> None:
    send_delivery.delay(str(delivery.id))


def enqueue_bulk(delivery_ids: Sequence[str]) -> None:
    """Send deliveries on the `bulk` queue (reminders, announcements).

    One send task per delivery until the batched sender (`send_batch`) is available.
    """
    for delivery_id in delivery_ids:
        send_delivery.apply_async((str(delivery_id),), queue="bulk")


@shared_task(name="messaging.tasks.expand_announcement", acks_late=True)
def expand_announcement(announcement_id: int) -> None:
    """Expand a confirmed announcement's audience into deliveries; run again until it is done."""
    from messaging.announcements import announcement_expand

    if not announcement_expand(announcement_id=announcement_id, enqueue_sends=enqueue_bulk):
        expand_announcement.delay(announcement_id)
