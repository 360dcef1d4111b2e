"""Celery adapters for relationship health (registered through CELERY_IMPORTS)."""

from __future__ import annotations

from celery import shared_task

from cadence import relationship


@shared_task(name="cadence.tasks.health_recompute_all")
def health_recompute_all() -> dict[str, int]:
    """Recompute every confirmed contact's health (beat runs it nightly)."""
    return relationship.health_recompute_all()


@shared_task(name="cadence.tasks.health_recompute_contact")
def health_recompute_contact(contact_id: str) -> None:
    """Recompute one contact's health after an event."""
    relationship.health_recompute(contact_ids=[contact_id])
