"""A real worker on the `events` queue, killed in the middle of processing: nothing lost, nothing doubled."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from messaging.models import Delivery, DeliveryEvent, EventPost
from messaging.tasks import event_posts_process
from preferences.models import ConsentEvent, Contact, SuppressionEntry
from tests.factories import DeliveryFactory
from tests.messaging import esp_payloads
from tests.workers import kill, purge_queues, running_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POSTS = 3000
BATCH = 500
BOUNCE_EVERY = 10
META = {"CONTENT_TYPE": "application/json", "PATH_INFO": "/anymail/postmark/tracking/", "HTTP_HOST": "testserver"}


def stored_posts() -> tuple[int, int]:
    """Store a Delivery event for each of POSTS sent mails, a HardBounce for one in BOUNCE_EVERY, each
    bounce posted twice more at the end (ESPs resend). Return (unique events, bounces)."""
    contacts = Contact.objects.bulk_create(
        Contact(email=f"kill-{i}@example.com", status=Contact.Status.CONFIRMED) for i in range(POSTS)
    )
    deliveries = Delivery.objects.bulk_create(
        DeliveryFactory.build(
            contact=contact, status=Delivery.Status.SENT, esp_name="postmark", esp_message_id=f"pm-{i}"
        )
        for i, contact in enumerate(contacts)
    )
    bodies = []
    for i, delivery in enumerate(deliveries):
        event = "hard_bounce" if i % BOUNCE_EVERY == 0 else "delivered"
        bodies.append(esp_payloads.postmark(event, delivery, n=i)["data"].encode())
    bounces = bodies[::BOUNCE_EVERY]
    EventPost.objects.bulk_create(EventPost(esp="postmark", body=body, meta=META) for body in bodies + bounces * 2)
    return len(bodies), len(bounces)


def claim_held() -> bool:
    """Return whether another connection holds a claim on EventPost rows (a batch in progress)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = %s AND l.pid <> pg_backend_pid() AND l.mode = 'RowShareLock'",
            [EventPost._meta.db_table],
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing_and_doubles_nothing():
    events, bounces = stored_posts()
    purge_queues("events")
    env = {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "EVENT_INTAKE_BATCH_POSTS": str(BATCH),
    }
    with running_worker(queues="events", name="events-killed", **env) as worker:
        event_posts_process.apply_async()
        # Killed while it holds a batch's claim, after at least one batch went through.
        assert wait_for(
            lambda: EventPost.objects.filter(state=EventPost.State.PROCESSED).exists() and claim_held(), timeout=60
        )
        kill(worker)

    processed = EventPost.objects.filter(state=EventPost.State.PROCESSED).count()
    waiting = EventPost.objects.filter(state=EventPost.State.NEW).count()
    assert processed % BATCH == 0 and 0 < processed < POSTS  # whole batches only: the one cut off left no trace
    assert waiting == events + 2 * bounces - processed
    assert DeliveryEvent.objects.count() == processed  # the first POSTS posts are one new event each

    purge_queues("events")
    with running_worker(queues="events", name="events-after", **env):
        event_posts_process.apply_async()
        assert wait_for(lambda: not EventPost.objects.filter(state=EventPost.State.NEW).exists(), timeout=120)

    assert EventPost.objects.filter(state=EventPost.State.PROCESSED).count() == events + 2 * bounces
    assert DeliveryEvent.objects.count() == events
    assert DeliveryEvent.objects.filter(type=DeliveryEvent.Type.BOUNCED).count() == bounces
    assert Contact.objects.filter(suppression_reason="hard_bounce").count() == bounces
    assert SuppressionEntry.objects.count() == bounces
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.SUPPRESSED).count() == bounces
    feedback = Delivery.objects.values_list("feedback", flat=True)
    assert sorted(set(feedback)) == [DeliveryEvent.Type.BOUNCED, DeliveryEvent.Type.DELIVERED]
    assert json.loads(bytes(EventPost.objects.first().body))["MessageStream"] == "outbound"  # kept as posted


def test_a_backlog_is_worked_off_without_waiting_for_beat():
    """Each run is bounded; a run that ends with posts waiting asks for the next (no beat runs here)."""
    stored_posts()
    purge_queues("events")
    env = {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "EVENT_INTAKE_BATCH_POSTS": "200",
        "EVENT_INTAKE_MAX_SECONDS": "0",  # one batch a run
    }
    with running_worker(queues="events", name="events-backlog", **env):
        event_posts_process.apply_async()
        assert wait_for(lambda: not EventPost.objects.filter(state=EventPost.State.NEW).exists(), timeout=120)
