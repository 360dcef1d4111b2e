"""Celery adapters of the cadence engine: take ids, call a service, own the retry policy."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from cadence import guard, heartbeat
from cadence import tick as cadence_tick
from cadence.batch import batch_send
from cadence.health import services as health
from cadence.reminders import reminders_create_due
from messaging.services import TransientSendError, deliveries_fail, retry_delay

logger = logging.getLogger(__name__)


class SendTask(Task):
    """Retries transient ESP errors after retry_delay (exponential, jittered, bounded) or the ESP's Retry-After."""

    acks_late = True

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        ids = kwargs.get("delivery_ids") or (args[0] if args else None)
        if ids:
            deliveries_fail(delivery_ids=ids, error=f"gave up: {exc!r}")  # ErrorClass.RETRIES_EXHAUSTED


def retry_countdown(*, retries: int, retry_after: float | None) -> float:
    """Return the seconds before retry number `retries` + 1: the backoff, or the ESP's Retry-After (the
    batch's largest, capped at SEND_RETRY_AFTER_MAX) when that is longer. Never sooner than the ESP asked,
    up to the cap."""
    return max(retry_delay(retries), min(retry_after or 0.0, settings.SEND_RETRY_AFTER_MAX))


@shared_task(base=SendTask, bind=True, name="cadence.tasks.send_batch")
def send_batch(self: SendTask, delivery_ids: list[str]) -> None:
    """Send a batch of deliveries (one or many, on the queue they belong to); a retry sends only the rest."""
    try:
        batch_send(delivery_ids=delivery_ids)
    except TransientSendError as exc:
        countdown = retry_countdown(retries=self.request.retries, retry_after=exc.retry_after)
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.SEND_MAX_RETRIES) from exc


@shared_task(name="cadence.tasks.reminders_tick")
def reminders_tick() -> int:
    """Create the service reminders due now (beat runs this every 15 minutes)."""
    return reminders_create_due()


@shared_task(name="cadence.tasks.tick", ignore_result=True)
def tick() -> int:
    """Claim what is due (bounded per run); return how many schedules were claimed."""
    claimed = cadence_tick.schedules_claim_due().claimed
    heartbeat.tick_record()  # probes and /metrics read this: beat and the tick are alive
    return claimed


@shared_task(name="cadence.tasks.silence_guard", ignore_result=True)
def silence_guard() -> dict[str, int]:
    """Count silence by reason and repair it; return the counts."""
    return guard.silence_repair().as_dict()


@shared_task(name="cadence.tasks.expand_announcement", acks_late=True)
def expand_announcement(announcement_id: int) -> None:
    """Expand a confirmed announcement's audience into deliveries; run again until it is done."""
    from cadence.announcements import announcement_expand

    if not announcement_expand(announcement_id=announcement_id):
        expand_announcement.delay(announcement_id)


@shared_task(name="cadence.tasks.start_scheduled_announcements", ignore_result=True)
def start_scheduled_announcements() -> int:
    """Start the announcements whose chosen time has come (beat, every minute)."""
    from cadence.announcements import announcements_start_due

    return announcements_start_due(enqueue=expand_announcement.delay)


@shared_task(name="cadence.tasks.health_recompute_all")
def health_recompute_all() -> dict[str, int]:
    """Recompute every confirmed contact's health (beat runs it nightly)."""
    return health.health_recompute_all()


@shared_task(name="cadence.tasks.health_recompute_contact")
def health_recompute_contact(contact_id: str) -> None:
    """Recompute one contact's health after an event."""
    health.health_recompute(contact_ids=[contact_id])


@shared_task(name="cadence.tasks.health_recompute_contacts")
def health_recompute_contacts(contact_ids: list[str]) -> None:
    """Recompute the health of many contacts after one batch of events, in one pass."""
    health.health_recompute(contact_ids=contact_ids)
