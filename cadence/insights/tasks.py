"""Celery adapters of the marketer's insights."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from cadence.insights.dashboard import CACHE_KEY, dashboard_stats


@shared_task(name="cadence.insights.tasks.dashboard_refresh")
def dashboard_refresh() -> None:
    """Recompute the marketing dashboard's figures into the cache, so no marketer waits for them."""
    cache.set(CACHE_KEY, dashboard_stats(), settings.DASHBOARD_CACHE_SECONDS + 120)
