"""The silence guard counts silence by reason and turns a lost send into a late one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from cadence.guard import silence_count, silence_repair
from cadence.models import Schedule
from messaging.models import Delivery
from tests.cadence.helpers import tick_and_send
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


def schedule(last_days_ago: float | None, *, next_in_days: float = 5, **contact: object) -> Schedule:
    last = None if last_days_ago is None else NOW - timedelta(days=last_days_ago)
    return Schedule.objects.create(
        contact=ContactFactory.create(**contact),
        next_due_at=NOW + timedelta(days=next_in_days),
        last_sent_at=last,
        welcome_step=9,
    )


def test_silence_is_counted_by_reason():
    schedule(10)  # monthly, fine
    schedule(37)  # monthly, in the grace (7.5 days)
    silent = schedule(38)
    schedule(16, frequency="biweekly")  # in the grace
    schedule(18, frequency="biweekly")  # silent
    schedule(90, paused_until=NOW + timedelta(days=10))  # paused: not silent
    schedule(90, suppressed_at=NOW - timedelta(days=50))  # unreachable, not silent
    schedule(None, confirmed_at=NOW - timedelta(minutes=5))  # welcome may still come
    schedule(None, confirmed_at=NOW - timedelta(minutes=11))  # welcome overdue
    counts = silence_count(now=NOW)
    assert (counts.silent, counts.welcome_overdue, counts.unreachable) == (2, 1, 1)
    assert Schedule.objects.get(pk=silent.pk).next_due_at > NOW


def test_the_guard_makes_the_silent_due_now_and_the_tick_sends_them(sent_batches):
    silent = schedule(38)
    paused = schedule(90, paused_until=NOW + timedelta(days=10))
    silence_repair(now=NOW)
    assert Schedule.objects.get(pk=silent.pk).next_due_at == NOW
    assert Schedule.objects.get(pk=paused.pk).next_due_at > NOW
    sent = tick_and_send(NOW)
    assert [(d.contact_id, d.status) for d in sent] == [(silent.contact_id, "sent")]
    assert silence_count(now=NOW).silent == 0


def test_a_send_lost_with_its_worker_is_sent_again_late_under_a_new_key(sent_batches):
    fine = schedule(31, next_in_days=-0.1)
    first = tick_and_send(NOW - timedelta(hours=1))
    assert len(first) == 1
    # A second slot, claimed by a worker that died halfway: the delivery stays "sending". (The first mail is
    # made an interval old: the claim never takes a second marketing mail inside one interval.)
    Schedule.objects.filter(pk=fine.pk).update(next_due_at=NOW, last_sent_at=NOW - timedelta(days=31))
    from cadence.tick import schedules_claim_due

    claimed = schedules_claim_due(now=NOW, keep_ids=True)
    lost_id = claimed.batch_ids[0][0]
    Delivery.objects.filter(id=lost_id).update(status="sending", claimed_at=NOW)

    counts = silence_repair(now=NOW + timedelta(minutes=30))
    assert counts.lost_sends == 1
    lost = Delivery.objects.get(id=lost_id)
    assert lost.status == Delivery.Status.FAILED and lost.error.startswith("lost")
    late = tick_and_send(NOW + timedelta(minutes=31))
    assert len(late) == 1 and late[0].status == Delivery.Status.SENT
    assert late[0].idempotency_key != lost.idempotency_key
    assert Delivery.objects.filter(status="sent").count() == 2


def test_a_lost_welcome_is_sent_again_late_once(celery_eager, django_capture_on_commit_callbacks):
    contact = ContactFactory.create(confirmed_at=NOW - timedelta(minutes=20))
    Schedule.objects.create(contact=contact, next_due_at=NOW + timedelta(days=3), welcome_step=1)
    DeliveryFactory.create(
        contact=contact,
        kind="welcome",
        idempotency_key=f"welcome:{contact.id}:0",
        status="sending",
        claimed_at=NOW - timedelta(minutes=19),
    )
    assert silence_count(now=NOW).welcome_overdue == 1
    with django_capture_on_commit_callbacks(execute=True):
        silence_repair(now=NOW)
        silence_repair(now=NOW + timedelta(minutes=1))
    assert Delivery.objects.filter(contact=contact).count() == 2
    late = Delivery.objects.get(idempotency_key=f"welcome:{contact.id}:0:late")
    assert late.status == Delivery.Status.SENT


def test_silence_report_prints_the_counts():
    schedule(38)
    out = StringIO()
    call_command("silence_report", stdout=out)
    assert "silent           1" in out.getvalue()
    assert "welcome_overdue  0" in out.getvalue()


def test_the_guard_does_not_repair_a_subscriber_whose_mail_is_still_queued(sent_batches):
    waiting = schedule(38, next_in_days=-0.1)
    from cadence.tick import schedules_claim_due

    schedules_claim_due(now=NOW)  # claimed, but the workers are behind
    assert silence_count(now=NOW).silent == 1
    silence_repair(now=NOW, stuck_after=timedelta(hours=1))
    assert Schedule.objects.get(pk=waiting.pk).next_due_at > NOW
    assert schedules_claim_due(now=NOW).claimed == 0
