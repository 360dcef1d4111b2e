"""The guard recovers lost deliveries of every kind, and trusts the ESP's word before sending again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from cadence.announcements import announcement_confirm, announcement_expand, announcement_progress
from cadence.guard import silence_repair
from cadence.kinds import Kind
from cadence.models import Announcement, Schedule
from messaging.models import Delivery, DeliveryEvent
from preferences.models import Contact
from tests.factories import AnnouncementFactory, ContactFactory, DeliveryEventFactory, DeliveryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def stuck(contact: Contact, kind: str, key: str, *, minutes_ago: int = 30, **fields: Any) -> Delivery:
    """A delivery whose worker died while sending it."""
    return DeliveryFactory.create(
        contact=contact,
        kind=kind,
        idempotency_key=key,
        status=Delivery.Status.SENDING,
        claimed_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


def repair_and_send(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        silence_repair()
        silence_repair()


def test_a_lost_confirmation_is_sent_again_late_once(celery_eager, django_capture_on_commit_callbacks):
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    lost = stuck(contact, Kind.CONFIRMATION, f"confirmation:{contact.pk}:1", queue="welcome")

    repair_and_send(django_capture_on_commit_callbacks)

    lost.refresh_from_db()
    assert lost.status == Delivery.Status.FAILED and lost.error.startswith("lost")
    late = Delivery.objects.get(idempotency_key=f"confirmation:{contact.pk}:1:late")
    assert late.status == Delivery.Status.SENT
    assert [m.to for m in mail.outbox] == [[contact.email]]
    assert "/confirm/" in mail.outbox[0].body


def test_a_lost_reminder_is_sent_again_late_once(celery_eager, django_capture_on_commit_callbacks):
    contact = ContactFactory(service_reminders=True)
    renews = timezone.localdate() + timedelta(days=30)
    product = ProductFactory(contact=contact, name="Home insurance", renews_on=renews)
    context = {
        "product_id": product.pk,
        "product_name": product.name,
        "event": "renewal",
        "event_date": renews.isoformat(),
        "days_before": 30,
    }
    stuck(
        contact,
        Kind.REMINDER,
        f"reminder:{product.pk}:1:{renews}",
        template="reminder_renewal",
        context=context,
    )

    repair_and_send(django_capture_on_commit_callbacks)

    assert Delivery.objects.get(idempotency_key=f"reminder:{product.pk}:1:{renews}:late").status == "sent"
    assert len(mail.outbox) == 1 and "Home insurance" in mail.outbox[0].body


def test_an_announcement_with_a_lost_delivery_still_reaches_done(celery_eager, django_capture_on_commit_callbacks):
    people = [ContactFactory(share_of_customer=40) for _ in range(3)]
    announcement = AnnouncementFactory(kind=Announcement.Kind.SERVICE, audience=Announcement.Audience.ALL_CUSTOMERS)
    assert announcement_confirm(announcement=announcement, confirmed_by="marketer")
    announcement_expand(announcement_id=announcement.pk, enqueue_sends=lambda ids: None)
    deliveries = list(Delivery.objects.filter(kind=Kind.ANNOUNCEMENT).order_by("id"))
    assert len(deliveries) == 3
    # Two were sent; the worker sending the third died.
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries[:2]]).update(
        status=Delivery.Status.SENT, sent_at=timezone.now()
    )
    Delivery.objects.filter(pk=deliveries[2].pk).update(
        status=Delivery.Status.SENDING, claimed_at=timezone.now() - timedelta(hours=1)
    )
    announcement.refresh_from_db()
    announcement_progress(announcement)
    assert announcement.status == Announcement.Status.SENDING

    repair_and_send(django_capture_on_commit_callbacks)

    announcement.refresh_from_db()
    progress = announcement_progress(announcement)
    assert announcement.status == Announcement.Status.DONE
    assert progress["sent"] == 3 and progress["queued"] == progress["sending"] == 0
    assert {address for m in mail.outbox for address in m.to} == {deliveries[2].contact.email}
    assert {p.email for p in people} >= {deliveries[2].contact.email}


@pytest.mark.parametrize(
    "event_type", [DeliveryEvent.Type.DELIVERED, DeliveryEvent.Type.BOUNCED, DeliveryEvent.Type.OPENED]
)
def test_a_stuck_delivery_the_esp_reported_on_is_recorded_as_sent_not_sent_again(
    celery_eager, django_capture_on_commit_callbacks, event_type
):
    contact = ContactFactory()
    Schedule.objects.create(contact=contact, next_due_at=timezone.now() + timedelta(days=29), welcome_step=9)
    delivery = stuck(contact, Kind.NURTURE, f"nurture:{contact.pk}:3", minutes_ago=40)
    reported_at = timezone.now() - timedelta(minutes=39)
    DeliveryEventFactory.create(delivery=delivery, type=event_type, occurred_at=reported_at)

    with time_machine.travel(timezone.now(), tick=False):
        repair_and_send(django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.sent_at == reported_at
    assert mail.outbox == []
    assert Delivery.objects.filter(contact=contact).count() == 1
    schedule = Schedule.objects.get(contact=contact)
    assert schedule.last_sent_at == reported_at and schedule.next_due_at > timezone.now()


def test_a_queued_delivery_whose_task_was_lost_goes_back_on_its_own_queue(
    celery_eager, django_capture_on_commit_callbacks
):
    contact = ContactFactory(service_reminders=True)
    renews = timezone.localdate() + timedelta(days=30)
    product = ProductFactory(contact=contact, name="Car insurance", renews_on=renews)
    long_ago = timezone.now() - timedelta(hours=2)
    DeliveryFactory.create(
        contact=contact,
        kind=Kind.REMINDER,
        template="reminder_renewal",
        idempotency_key=f"reminder:{product.pk}:1:{renews}",
        context={"product_id": product.pk, "product_name": product.name, "event": "renewal",
                 "event_date": renews.isoformat(), "days_before": 30},
    )  # fmt: skip
    Delivery.objects.update(updated_at=long_ago)

    counts = silence_repair()

    assert counts.requeued == 1
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert len(mail.outbox) == 1


def test_a_delivery_waiting_for_the_esps_retry_after_is_not_queued_again_early(celery_eager, settings):
    settings.SEND_RETRY_AFTER_MAX = 55 * 60  # the ESP may ask for up to 55 minutes
    contact = ContactFactory()
    waiting = DeliveryFactory.create(
        contact=contact,
        idempotency_key=f"nurture:{contact.pk}:4",
        attempts=3,
        error="transient: 429: slow down",
    )
    # The last try was 65 minutes ago: past the guard's hour for a lost task, but its retry may still be
    # counting down (55 minutes, plus the 15 a worker may take).
    Delivery.objects.filter(pk=waiting.pk).update(updated_at=timezone.now() - timedelta(minutes=65))
    assert silence_repair().requeued == 0
    waiting.refresh_from_db()
    assert waiting.status == Delivery.Status.QUEUED and mail.outbox == []
    # Past the longest countdown, the retry task is taken for lost and the mail goes.
    Delivery.objects.filter(pk=waiting.pk).update(updated_at=timezone.now() - timedelta(minutes=71))
    assert silence_repair().requeued == 1
    waiting.refresh_from_db()
    assert waiting.status == Delivery.Status.SENT and len(mail.outbox) == 1


def test_retries_of_a_transient_esp_outage_last_at_least_six_hours(settings):
    from cadence.tasks import retry_countdown

    # The shortest possible waits (the jitter takes at least half of each backoff).
    shortest = sum(
        min(settings.SEND_RETRY_BACKOFF_MAX, settings.SEND_RETRY_BACKOFF * 2**n) / 2
        for n in range(settings.SEND_MAX_RETRIES)
    )
    assert shortest >= 6 * 3600
    # The ESP's Retry-After is honoured when it is longer than the backoff, up to the cap.
    assert retry_countdown(retries=0, retry_after=120) >= 120
    assert retry_countdown(retries=0, retry_after=10**6) <= max(
        settings.SEND_RETRY_AFTER_MAX, settings.SEND_RETRY_BACKOFF_MAX
    )


def test_a_lost_task_is_queued_again_once_per_period_not_at_every_guard_run(settings, monkeypatch):
    from cadence import guard as services

    enqueued: list[list[str]] = []
    monkeypatch.setattr(services, "deliveries_enqueue", lambda ids, queue: enqueued.append([str(i) for i in ids]))
    contacts = [ContactFactory() for _ in range(3)]
    for n, contact in enumerate(contacts):
        DeliveryFactory.create(contact=contact, idempotency_key=f"nurture:{contact.pk}:{n}")
    Delivery.objects.update(updated_at=timezone.now() - timedelta(hours=2))  # their task went with the broker

    assert silence_repair().requeued == 3
    # The guard runs every few minutes; the workers have not got to the task yet.
    for _ in range(3):
        assert silence_repair().requeued == 0
    assert len(enqueued) == 1 and len(enqueued[0]) == 3
    # Still queued four times `stuck_after` later: that task was lost too, so once more.
    with time_machine.travel(timezone.now() + timedelta(minutes=4 * settings.CADENCE_STUCK_SENDING_MINUTES + 1)):
        assert silence_repair().requeued == 3
    assert len(enqueued) == 2


def test_one_guard_at_a_time_a_second_run_only_counts(monkeypatch):
    from django.core.cache import cache

    from cadence import guard as services

    contact = ContactFactory()
    DeliveryFactory.create(contact=contact, idempotency_key=f"nurture:{contact.pk}:1")
    Delivery.objects.update(updated_at=timezone.now() - timedelta(hours=2))
    monkeypatch.setattr(services, "deliveries_enqueue", lambda ids, queue: None)

    cache.set(services.GUARD_LOCK, "another guard", timeout=60)
    assert silence_repair().requeued == 0  # another run holds the lock: counted, not repaired
    assert cache.get(services.GUARD_LOCK) == "another guard"  # and its lock is left alone
    cache.delete(services.GUARD_LOCK)
    assert silence_repair().requeued == 1
    assert cache.get(services.GUARD_LOCK) is None  # released after the run
