"""Celery adapters: take ids, call a service, own the retry policy."""

from __future__ import annotations

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


def enqueue_retry(delivery: Any) -> None:
    """Enqueue a retried delivery on the queue its kind belongs to."""
    queue = "welcome" if delivery.kind in services.WELCOME_QUEUE_KINDS else "bulk"
    send_delivery.apply_async((str(delivery.id),), queue=queue)
