"""Celery adapters of the cadence engine."""

from __future__ import annotations

from celery import shared_task

from cadence.reminders import reminders_create_due


@shared_task(name="cadence.tasks.reminders_tick")
def reminders_tick() -> int:
    """Create the service reminders due now (beat runs this every 15 minutes)."""
    return reminders_create_due()
