"""Celery adapters: take ids, call a service, own the retry policy."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from messaging import services

logger = logging.getLogger(__name__)


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


class BatchTask(Task):
    max_retries = 6
    acks_late = True

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        for delivery_id in kwargs.get("delivery_ids") or (args[0] if args else []):
            services.delivery_fail(delivery_id=delivery_id, error=f"gave up: {exc!r}")


@shared_task(base=BatchTask, bind=True, name="messaging.tasks.send_batch")
def send_batch(self: Task, delivery_ids: list[str]) -> None:
    """Send each delivery of a batch (nurture: the `bulk` queue). Each one is claimed on its own, so a
    redelivered batch sends only what is still queued; the ones the ESP asks to retry go again later."""
    again = []
    for delivery_id in delivery_ids:
        try:
            services.delivery_send(delivery_id=delivery_id)
        except services.TransientSendError:
            again.append(delivery_id)
        except Exception as exc:  # one broken mail must not hold up the rest of the batch
            logger.exception("delivery failed", extra={"delivery_id": str(delivery_id)})
            services.delivery_fail(delivery_id=delivery_id, error=f"error: {exc!r}")
    if again:
        raise self.retry(args=[again], kwargs={}, countdown=min(600, 5 * 2**self.request.retries))


def enqueue_batch(delivery_ids: list[Any]) -> None:
    send_batch.delay([str(delivery_id) for delivery_id in delivery_ids])
