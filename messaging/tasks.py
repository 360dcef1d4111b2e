"""Celery adapters of messaging (the `events` queue)."""

from __future__ import annotations

from celery import shared_task

from messaging import intake


@shared_task(name="messaging.tasks.event_posts_process", acks_late=True)
def event_posts_process() -> dict[str, int]:
    """Process the stored ESP posts in batches until none waits (web processes and beat ask for it)."""
    return intake.event_posts_process()
