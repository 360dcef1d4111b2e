"""The tick: welcome series, then nurture at the chosen frequency; bounded; moved by every change."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from cadence import rules
from cadence.models import Schedule
from cadence.schedules import schedule_reschedule
from cadence.tick import schedules_claim_due
from messaging.models import Delivery
from preferences.models import Contact
from preferences.services import Evidence, contact_unsubscribe, contact_update_preferences
from tests.cadence.helpers import start, tick_and_send
from tests.factories import ContactFactory, ContentItemFactory

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Amsterdam


def evidence() -> Evidence:
    return Evidence(ip_address="127.0.0.1", user_agent="test", source="test")


@pytest.mark.parametrize("portable", [False, True])
def test_the_welcome_series_runs_in_order_then_hands_over_to_nurture(portable, topics):
    if not portable and connection.vendor != "postgresql":
        pytest.skip("the single-statement claim is PostgreSQL only")
    ContentItemFactory(topic=topics[0], title="Rates go up", published_at=MONDAY - timedelta(days=1))
    with time_machine.travel(MONDAY, tick=False):
        contact = ContactFactory(topics=[topics[0]], frequency="biweekly", confirmed_at=MONDAY)
        start(contact)
    assert [m.subject for m in mail.outbox] == ["Welcome, Sam"]

    assert tick_and_send(MONDAY + timedelta(days=2), portable=portable) == []
    expect = tick_and_send(MONDAY + timedelta(days=3, minutes=1), portable=portable)
    assert [(d.kind, d.template, d.status) for d in expect] == [("welcome", "welcome_expect", "sent")]
    picks = tick_and_send(MONDAY + timedelta(days=10, minutes=1), portable=portable)
    assert [d.template for d in picks] == ["welcome_picks"]
    assert "Rates go up" in mail.outbox[-1].body

    schedule = Schedule.objects.get(pk=contact.pk)
    assert schedule.welcome_step == 3
    last = MONDAY + timedelta(days=10, minutes=1)
    assert (
        last + timedelta(days=14) <= schedule.next_due_at <= last + timedelta(days=14) + rules.grace(timedelta(days=14))
    )
    assert tick_and_send(schedule.next_due_at - timedelta(minutes=1), portable=portable) == []
    nurture = tick_and_send(schedule.next_due_at, portable=portable)
    assert [(d.kind, d.idempotency_key) for d in nurture] == [("nurture", f"nurture:{contact.id}:3")]
    assert len(mail.outbox) == 4
    assert "List-Unsubscribe" in mail.outbox[-1].extra_headers


def test_the_tick_is_bounded_and_the_next_run_continues(sent_batches):
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    for _ in range(7):
        Schedule.objects.create(contact=ContactFactory(), next_due_at=now - timedelta(hours=1), welcome_step=9)
    first = schedules_claim_due(now=now, batch_size=2, max_batches=2)
    assert (first.claimed, first.batches) == (4, 2)
    second = schedules_claim_due(now=now, batch_size=2, max_batches=10)
    assert second.claimed == 3
    assert Delivery.objects.filter(kind="nurture").count() == 7
    assert schedules_claim_due(now=now).claimed == 0


def test_running_the_tick_again_at_once_claims_nothing_twice(sent_batches):
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    Schedule.objects.create(contact=ContactFactory(), next_due_at=now, welcome_step=9)
    assert schedules_claim_due(now=now).claimed == 1
    assert schedules_claim_due(now=now).claimed == 0
    assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_on_postgresql_create_no_duplicate(postgres_only, sent_batches):
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    contacts = ContactFactory.create_batch(400)
    Schedule.objects.bulk_create([Schedule(contact=c, next_due_at=now, welcome_step=9) for c in contacts])
    results = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(schedules_claim_due(now=now, batch_size=25, claim_size=25))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.claimed for r in results) == 400
    assert all(r.claimed > 0 for r in results), "both ticks worked side by side (SKIP LOCKED)"
    assert Delivery.objects.count() == 400
    assert Delivery.objects.values("contact").distinct().count() == 400
    assert sorted(i for batch in sent_batches for i in batch) == sorted(
        str(i) for i in Delivery.objects.values_list("id", flat=True)
    )


def test_a_frequency_change_counts_from_the_last_mail_and_never_sends_twice(sent_batches):
    last = datetime(2026, 11, 2, 10, tzinfo=UTC)
    contact = ContactFactory(frequency="monthly")
    Schedule.objects.create(contact=contact, next_due_at=last + timedelta(days=30), last_sent_at=last, welcome_step=9)
    with time_machine.travel(last + timedelta(days=10), tick=False):
        contact_update_preferences(contact=contact, evidence=evidence(), frequency="biweekly")
    due = Schedule.objects.get(pk=contact.pk).next_due_at
    assert last + timedelta(days=14) <= due < last + timedelta(days=16)
    with time_machine.travel(last + timedelta(days=20), tick=False):
        contact_update_preferences(contact=contact, evidence=evidence(), frequency="quarterly")
    assert Schedule.objects.get(pk=contact.pk).next_due_at >= last + timedelta(days=91)
    assert schedules_claim_due(now=last + timedelta(days=21)).claimed == 0


def test_re_planning_without_a_longer_interval_never_moves_the_next_mail_the_send_planned(sent_batches, topics):
    # The send places the next mail (jitter inside the send window); a later re-planning of the same
    # schedule (a change of frequency back and forth, a restart) must land on the same moment, or a
    # promise made from it (an announcement's "everyone has it by") could be broken by a few hours.
    ContentItemFactory(topic=topics[0], title="Rates go up", published_at=MONDAY - timedelta(days=1))
    contacts = [ContactFactory(topics=[topics[0]], frequency="monthly") for _ in range(12)]
    Schedule.objects.bulk_create(
        Schedule(contact=c, next_due_at=MONDAY, last_sent_at=MONDAY - timedelta(days=40), welcome_step=9)
        for c in contacts
    )
    tick_and_send(MONDAY)
    planned = dict(Schedule.objects.values_list("contact_id", "next_due_at"))
    assert all(due > MONDAY + timedelta(days=29) for due in planned.values())
    with time_machine.travel(MONDAY + timedelta(days=3), tick=False):
        for contact in contacts:
            contact_update_preferences(contact=contact, evidence=evidence(), frequency="biweekly")
            contact_update_preferences(contact=contact, evidence=evidence(), frequency="monthly")
            schedule_reschedule(contact=contact)
    assert dict(Schedule.objects.values_list("contact_id", "next_due_at")) == planned


def test_a_pause_moves_the_next_mail_to_its_end_and_resuming_brings_it_back(sent_batches):
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    contact = ContactFactory(frequency="biweekly")
    Schedule.objects.create(
        contact=contact, next_due_at=now + timedelta(days=4), last_sent_at=now - timedelta(days=10), welcome_step=9
    )
    with time_machine.travel(now, tick=False):
        contact_update_preferences(contact=contact, evidence=evidence(), pause_months=3)
        contact.refresh_from_db()
        assert Schedule.objects.get(pk=contact.pk).next_due_at >= contact.paused_until
        contact_update_preferences(contact=contact, evidence=evidence(), resume=True)
    assert Schedule.objects.get(pk=contact.pk).next_due_at < now + timedelta(days=6)


def test_unsubscribing_stops_the_schedule_and_cancels_what_was_queued(sent_batches):
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    contact = ContactFactory()
    Schedule.objects.create(contact=contact, next_due_at=now, welcome_step=9)
    schedules_claim_due(now=now)
    contact_unsubscribe(contact=contact, evidence=evidence())
    assert Schedule.objects.get(pk=contact.pk).is_active is False
    assert Delivery.objects.get(contact=contact).status == Delivery.Status.CANCELLED
    assert schedules_claim_due(now=now + timedelta(days=400)).claimed == 0


def test_consent_is_checked_again_when_the_claimed_mail_is_sent(sent_batches):
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    contact = ContactFactory()
    Schedule.objects.create(contact=contact, next_due_at=now, welcome_step=9)
    result = schedules_claim_due(now=now, keep_ids=True)
    Contact.objects.filter(pk=contact.pk).update(paused_until=now + timedelta(days=60))
    from cadence.batch import batch_send

    batch_send(delivery_ids=[result.batch_ids[0][0]])
    assert mail.outbox == []
    assert Delivery.objects.get(contact=contact).status == Delivery.Status.CANCELLED


def test_a_schedule_of_a_suppressed_contact_is_stopped():
    contact = ContactFactory(suppressed_at=datetime(2026, 11, 1, tzinfo=UTC))
    Schedule.objects.create(contact=contact, next_due_at=datetime(2026, 11, 25, tzinfo=UTC), welcome_step=9)
    schedule_reschedule(contact=contact)
    assert Schedule.objects.get(pk=contact.pk).is_active is False
