"""Each task lands on its own queue, once."""

from __future__ import annotations

import redis
from django.conf import settings

from cadence.tasks import send_batch
from config.celery import app as celery_app
from tests.workers import purge_queues

QUEUES = ("welcome", "bulk", "webhooks", "default")


def queue_lengths() -> dict[str, int]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return {name: client.llen(name) for name in QUEUES}


def test_a_welcome_send_is_queued_once_on_the_welcome_queue_only():
    purge_queues(*QUEUES)
    send_batch.apply_async((["00000000-0000-0000-0000-000000000000"],), queue="welcome")
    assert queue_lengths() == {"welcome": 1, "bulk": 0, "webhooks": 0, "default": 0}
    purge_queues(*QUEUES)


def test_unrouted_tasks_go_to_the_default_queue_once():
    purge_queues(*QUEUES)
    celery_app.send_task("some.unrouted.task")
    assert queue_lengths() == {"welcome": 0, "bulk": 0, "webhooks": 0, "default": 1}
    purge_queues(*QUEUES)
