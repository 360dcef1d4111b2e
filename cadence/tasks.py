"""Celery adapters of the cadence engine (the `default` queue)."""

from __future__ import annotations

from celery import shared_task

from cadence import services


@shared_task(name="cadence.tasks.tick", ignore_result=True)
def tick() -> int:
    """Claim what is due (bounded per run); return how many schedules were claimed."""
    return services.schedules_claim_due().claimed


@shared_task(name="cadence.tasks.silence_guard", ignore_result=True)
def silence_guard() -> dict[str, int]:
    """Count silence by reason and repair it; return the counts."""
    return services.silence_repair().as_dict()
