"""Queue deliveries as send tasks: one task per batch, on the queue each delivery belongs to.

The send task is found by name, so the producers never import their own adapters (no import circle).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from config.celery import app
from config.publish import publish_now_or_never
from messaging.models import Delivery

SEND_TASK = "cadence.tasks.send_batch"


def deliveries_enqueue(delivery_ids: Sequence[UUID | str], *, queue: str, batch_size: int | None = None) -> None:
    """Put the deliveries on `queue` as send tasks of at most `batch_size` (CADENCE_TICK_BATCH_SIZE) each."""
    send_batch = app.tasks[SEND_TASK]
    ids = [str(delivery_id) for delivery_id in delivery_ids]
    size = batch_size or settings.CADENCE_TICK_BATCH_SIZE
    for start in range(0, len(ids), size):
        send_batch.apply_async((ids[start : start + size],), queue=queue)


def deliveries_enqueue_on_their_queues(delivery_ids: Sequence[UUID | str]) -> None:
    """Put deliveries of mixed queues (a resumed send) each on its own queue."""
    by_queue: dict[str, list[str]] = {}
    for delivery_id, queue in Delivery.objects.filter(id__in=list(delivery_ids)).values_list("id", "queue"):
        by_queue.setdefault(queue, []).append(str(delivery_id))
    for queue, ids in by_queue.items():
        deliveries_enqueue(ids, queue=queue)


def delivery_enqueue(delivery: Delivery) -> None:
    """Put one delivery on its own queue (a batch of one).

    Called after a person's request committed (a confirmation, a requested link): with the broker down the
    request must still be answered and the mail not lost. The row stays queued, dated back so that the
    silence guard's next run queues it again (`deliveries_recover_lost`), that is once the broker answers.
    """
    if not publish_now_or_never(app.tasks[SEND_TASK], ([str(delivery.id)],), queue=delivery.queue):
        lost_since = timezone.now() - 4 * timedelta(minutes=settings.CADENCE_STUCK_SENDING_MINUTES + 1)
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.QUEUED).update(updated_at=lost_since)
