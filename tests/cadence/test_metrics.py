from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

import messaging.models as messaging_models
from cadence import heartbeat
from cadence.kinds import Kind
from cadence.models import Schedule
from cadence.ops import figures as ops
from cadence.tasks import send_batch
from messaging.models import Delivery
from tests.factories import ContactFactory, DeliveryEventFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """The real broker of the test run, with the project's queues emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def purge() -> None:
        for name in ops.queue_names():
            client.delete(*ops.priority_keys(name))

    purge()
    yield client
    purge()


def scrape(client) -> dict[str, dict[tuple, float]]:
    """Return {sample name: {labels: value}} from a real scrape of /metrics."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def real_list_length(client: redis.Redis, queue: str) -> int:
    """Sum LLEN over every Redis list whose name starts with the queue's name (found by SCAN, not by kombu)."""
    total = 0
    for key in client.scan_iter(match=f"{queue}*"):
        name = key.decode()
        if name != queue and not name.startswith(f"{queue}\x06\x16"):
            continue  # another queue that merely starts with the same letters
        if client.type(key) == b"list":
            total += client.llen(key)
    return total


def test_metrics_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_queue_depth_equals_the_real_redis_lists_priorities_included(client, settings, broker):
    settings.METRICS_TOKEN = TOKEN
    # Real messages through Celery, no worker running: they stay in Redis.
    for priority in (0, 0, 3, 5, 9):
        send_batch.apply_async(([str(uuid.uuid4())],), queue="bulk", priority=priority)
    for _ in range(2):
        send_batch.apply_async(([str(uuid.uuid4())],), queue="welcome")
    send_batch.apply_async(([str(uuid.uuid4())],), queue="default", priority=6)

    depth = scrape(client)["cadence_queue_depth"]

    assert len([key for key in broker.keys("bulk*") if broker.type(key) == b"list"]) > 1  # priority lists in use
    for queue in ("welcome", "bulk", "default"):
        assert depth[(("queue", queue),)] == real_list_length(broker, queue)
    assert depth[(("queue", "bulk"),)] == 5
    assert depth[(("queue", "welcome"),)] == 2
    assert depth[(("queue", "default"),)] == 1


def test_metrics_count_deliveries_errors_overdue_subscribers_and_welcome_latency(client, settings):
    settings.METRICS_TOKEN = TOKEN
    now = timezone.now()
    for seconds in (3, 20, 20, 400):
        contact = ContactFactory(confirmed_at=now - timedelta(minutes=10))
        DeliveryFactory.create(
            contact=contact,
            kind=Kind.WELCOME,
            queue=Delivery.Queue.WELCOME,
            status=Delivery.Status.SENT,
            sent_at=contact.confirmed_at + timedelta(seconds=seconds),
        )
    failed = ContactFactory()
    DeliveryFactory.create(
        contact=failed,
        status=Delivery.Status.FAILED,
        error="recipient refused: jan@example.com",
        error_class=Delivery.ErrorClass.RECIPIENT_REFUSED,
    )
    DeliveryFactory.create(
        contact=failed,
        status=Delivery.Status.FAILED,
        error="permanent: 400: bad sender",
        error_class=Delivery.ErrorClass.PERMANENT,
    )
    silent = ContactFactory(confirmed_at=now - timedelta(days=40))
    Schedule.objects.create(contact=silent, next_due_at=now - timedelta(hours=3))
    ContactFactory(confirmed_at=now - timedelta(days=2))  # no schedule, no welcome
    heartbeat.tick_record(now=now - timedelta(seconds=42))

    samples = scrape(client)

    deliveries = samples["cadence_deliveries"]
    assert deliveries[(("kind", "welcome"), ("status", "sent"))] == 4
    assert deliveries[(("kind", "nurture"), ("status", "failed"))] == 2
    assert deliveries[(("kind", "nurture"), ("status", "sent"))] == 0
    errors = samples["cadence_esp_errors"]
    assert errors[(("error_class", "recipient_refused"),)] == 1
    assert errors[(("error_class", "permanent"),)] == 1
    overdue = samples["cadence_subscribers_overdue"]
    assert overdue[(("reason", "tick_behind"),)] == 1
    # Only the one confirmed two days ago: the others are within the grace or have a schedule.
    assert overdue[(("reason", "no_schedule"),)] == 1
    # The guard's own counts: the contact with a schedule but no marketing mail ever is welcome-overdue.
    assert overdue[(("reason", "welcome_overdue"),)] == 1
    assert overdue[(("reason", "silent"),)] == 0
    assert samples["cadence_tick_lag_seconds"][()] == pytest.approx(3 * 3600, abs=60)
    assert samples["cadence_last_tick_age_seconds"][()] == pytest.approx(42, abs=10)
    buckets = {dict(labels)["le"]: value for labels, value in samples["cadence_welcome_latency_seconds_bucket"].items()}
    assert buckets["5.0"] == 1
    assert buckets["30.0"] == 3
    assert buckets["300.0"] == 3
    assert buckets["600.0"] == 4
    assert buckets["+Inf"] == 4
    assert samples["cadence_welcome_latency_seconds_count"][()] == 4
    assert samples["cadence_welcome_latency_seconds_sum"][()] == pytest.approx(443)
    assert all(value == 0 for value in samples["cadence_scrape_errors"].values())


@pytest.mark.skipif(
    not hasattr(messaging_models, "DeliveryEvent"),
    reason="the webhook event log (messaging.models.DeliveryEvent) is not on this branch",
)
def test_metrics_count_webhook_events_of_the_last_day(client, settings):

    settings.METRICS_TOKEN = TOKEN
    contact = ContactFactory()
    delivery = DeliveryFactory.create(contact=contact, kind="welcome")
    now = timezone.now()
    for kind, hours_ago in [("delivered", 1), ("delivered", 2), ("bounced", 3), ("opened", 30)]:
        DeliveryEventFactory.create(delivery=delivery, type=kind, occurred_at=now - timedelta(hours=hours_ago))

    events = scrape(client)["cadence_webhook_events"]

    assert events[(("esp", "postmark"), ("type", "delivered"))] == 2
    assert events[(("esp", "postmark"), ("type", "bounced"))] == 1
    assert (("esp", "postmark"), ("type", "opened")) not in events
