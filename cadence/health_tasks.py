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


@shared_task(name="cadence.tasks.dashboard_refresh")
def dashboard_refresh() -> None:
    """Recompute the marketing dashboard's figures into the cache, so no marketer waits for them."""
    from django.conf import settings
    from django.core.cache import cache

    from cadence.dashboard import CACHE_KEY, dashboard_stats

    cache.set(CACHE_KEY, dashboard_stats(), settings.DASHBOARD_CACHE_SECONDS + 120)
