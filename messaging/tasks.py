"""Celery adapters of messaging's own jobs."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from messaging.retention import deliveries_prune as prune


@shared_task(name="messaging.tasks.deliveries_prune")
def deliveries_prune() -> dict[str, Any]:
    """Prune deliveries past DELIVERY_RETENTION_DAYS (beat, nightly; bounded per run)."""
    result = prune()
    return {"deliveries": result.deliveries, "events": result.events, "done": result.done}
