"""On PostgreSQL with real Redis and real Celery workers: no duplicate, and a killed worker's mail comes late."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from cadence.enqueue import deliveries_enqueue
from cadence.guard import silence_repair
from cadence.models import Schedule
from cadence.tick import schedules_claim_due
from messaging.models import Delivery
from tests.cadence.workers import kill, purge, wait_for, worker
from tests.factories import ContactFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.postgres]


def due_contacts(count: int) -> None:
    now = timezone.now()
    contacts = ContactFactory.create_batch(count)
    Schedule.objects.bulk_create(
        [
            Schedule(
                contact=c, next_due_at=now - timedelta(minutes=1), last_sent_at=now - timedelta(days=40), welcome_step=9
            )
            for c in contacts
        ]
    )


def settled() -> bool:
    return not Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]).exists()


def assert_one_mail_each(count: int) -> None:
    sent = Delivery.objects.filter(kind="nurture", status=Delivery.Status.SENT)
    assert sent.count() == count
    assert not sent.values("contact").annotate(n=Count("id")).filter(n__gt=1).exists(), "a contact got two mails"


def test_two_ticks_and_two_real_workers_at_once_send_each_mail_once(postgres_only):
    purge("bulk", "welcome")
    due_contacts(300)
    with (
        worker("bulk-a", EMAIL_BACKEND="anymail.backends.test.EmailBackend"),
        worker("bulk-b", EMAIL_BACKEND="anymail.backends.test.EmailBackend"),
    ):
        barrier = threading.Barrier(2)
        claimed = []

        def tick() -> None:
            barrier.wait()
            try:
                result = schedules_claim_due(batch_size=20, claim_size=20, keep_ids=True)
                claimed.append(result.claimed)
                # A redelivered or retried task: every batch is sent a second time.
                for ids in result.batch_ids:
                    deliveries_enqueue(ids, queue="bulk")
            finally:
                connection.close()

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(claimed) == 300
        assert wait_for(lambda: Delivery.objects.filter(status="sent").count() == 300 and settled(), timeout=120)
    assert_one_mail_each(300)
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_worker_killed_mid_batch_sends_no_duplicate_and_the_guard_delivers_the_lost_mail_late(postgres_only):
    purge("bulk", "welcome")
    due_contacts(60)
    slow = {"EMAIL_BACKEND": "tests.cadence.slow_backend.EmailBackend", "SLOW_SEND_SECONDS": "0.1"}
    with worker("doomed", **slow) as doomed:
        schedules_claim_due(batch_size=20)
        assert wait_for(
            lambda: (
                Delivery.objects.filter(status="sent").count() >= 5
                and Delivery.objects.filter(status="sending").exists()
            ),
            timeout=60,
        )
        kill(doomed)
    sent_before = Delivery.objects.filter(status="sent").count()
    assert 5 <= sent_before < 60, "killed in the middle of the work"
    # A batch is claimed as a whole, so what the killed worker held is at most one batch, stuck in "sending".
    stuck = Delivery.objects.filter(status="sending").count()
    assert 1 <= stuck <= 20, "the killed worker held part of one batch"

    # The guard runs later: here at once, with no wait for stuck sends (in production it waits longer
    # than the task time limit, so that it never mistakes a slow send for a lost one).
    counts = silence_repair(stuck_after=timedelta(0))
    schedules_claim_due()
    with worker("survivor", EMAIL_BACKEND="anymail.backends.test.EmailBackend"):
        assert wait_for(settled, timeout=120)
    assert_one_mail_each(60)
    lost = Delivery.objects.filter(status="failed", error__startswith="lost")
    assert lost.count() == counts.lost_sends == stuck
    for delivery in lost:
        late = Delivery.objects.get(contact=delivery.contact, status="sent")
        assert late.created_at > delivery.created_at and late.idempotency_key != delivery.idempotency_key
