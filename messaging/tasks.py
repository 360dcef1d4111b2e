"""Celery adapters of messaging's own jobs: processing ESP events (the `events` queue) and retention."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from messaging import intake
from messaging.models import EventPost
from messaging.retention import deliveries_prune as prune
from messaging.retention import event_posts_prune


@shared_task(name="messaging.tasks.event_posts_process", acks_late=True)
def event_posts_process() -> dict[str, int]:
    """Process the stored ESP posts in batches until none waits (web processes and beat ask for it).

    A run is bounded (EVENT_INTAKE_MAX_SECONDS); one that ends with posts still waiting asks for the
    next at once, so a backlog is worked off without pausing until beat's next ask.
    """
    totals = intake.event_posts_process()
    if totals["posts"] and EventPost.objects.filter(state=EventPost.State.NEW).exists():
        event_posts_process.apply_async(expires=300)
    return totals


@shared_task(name="messaging.tasks.deliveries_prune")
def deliveries_prune() -> dict[str, Any]:
    """Prune deliveries past DELIVERY_RETENTION_DAYS and processed ESP posts past EVENT_POST_RETENTION_DAYS
    (beat, nightly; bounded per run)."""
    result = prune()
    posts = event_posts_prune()
    return {"deliveries": result.deliveries, "events": result.events, "done": result.done, "event_posts": posts}
