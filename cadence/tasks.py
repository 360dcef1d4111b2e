"""Celery adapters of the cadence engine (the `default` queue)."""

from __future__ import annotations

from celery import shared_task

from cadence import ops, services
from cadence.reminders import reminders_create_due


@shared_task(name="cadence.tasks.reminders_tick")
def reminders_tick() -> int:
    """Create the service reminders due now (beat runs this every 15 minutes)."""
    return reminders_create_due()


@shared_task(name="cadence.tasks.tick", ignore_result=True)
def tick() -> int:
    """Claim what is due (bounded per run); return how many schedules were claimed."""
    claimed = services.schedules_claim_due().claimed
    ops.tick_record()  # /probes and /metrics read this: beat and the tick are alive
    return claimed


@shared_task(name="cadence.tasks.silence_guard", ignore_result=True)
def silence_guard() -> dict[str, int]:
    """Count silence by reason and repair it; return the counts."""
    return services.silence_repair().as_dict()
