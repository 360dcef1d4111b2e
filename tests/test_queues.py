"""Each task lands on its own queue, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
import time_machine
from django.conf import settings
from django.utils import timezone

from cadence.health import services as relationship
from cadence.models import Schedule
from cadence.tasks import send_batch
from config.celery import app as celery_app
from tests.factories import ContactFactory
from tests.workers import purge_queues

QUEUES = ("welcome", "bulk", "default")


def queue_lengths() -> dict[str, int]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return {name: client.llen(name) for name in QUEUES}


def test_a_welcome_send_is_queued_once_on_the_welcome_queue_only():
    purge_queues(*QUEUES)
    send_batch.apply_async((["00000000-0000-0000-0000-000000000000"],), queue="welcome")
    assert queue_lengths() == {"welcome": 1, "bulk": 0, "default": 0}
    purge_queues(*QUEUES)


def test_unrouted_tasks_go_to_the_default_queue_once():
    purge_queues(*QUEUES)
    celery_app.send_task("some.unrouted.task")
    assert queue_lengths() == {"welcome": 0, "bulk": 0, "default": 1}
    purge_queues(*QUEUES)


@pytest.mark.django_db
def test_a_reengagement_mail_goes_to_the_bulk_queue_not_welcome(django_capture_on_commit_callbacks):
    now = timezone.now()
    contact = ContactFactory(confirmed_at=now - timedelta(days=100), frequency="monthly")
    Schedule.objects.create(contact=contact, next_due_at=now + timedelta(days=1), last_sent_at=now - timedelta(days=40))
    purge_queues(*QUEUES)
    with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
        relationship.health_recompute(contact_ids=[contact.pk])
    assert contact.deliveries.get().kind == "reengagement"
    assert queue_lengths() == {"welcome": 0, "bulk": 1, "default": 0}
    purge_queues(*QUEUES)
