from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from cadence.health import services as relationship
from cadence.kinds import Kind
from cadence.models import ContactHealth, Schedule
from messaging.models import Delivery, DeliveryEvent
from preferences import services
from preferences.models import ConsentEvent, Contact
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def quiet_contact(quiet_days: int, last_mail_days: int = 5, **kwargs) -> Contact:
    contact = ContactFactory.create(confirmed_at=NOW - timedelta(days=quiet_days), **kwargs)
    Schedule.objects.create(
        contact=contact,
        next_due_at=NOW + timedelta(days=20),
        last_sent_at=NOW - timedelta(days=last_mail_days),
    )
    return contact


@time_machine.travel(NOW, tick=False)
def test_batch_recompute_stores_state_and_reasons_for_confirmed_contacts_only():
    healthy = quiet_contact(10)
    cooling = quiet_contact(100)
    ContactFactory.create(status=Contact.Status.PENDING)

    counts = relationship.health_recompute_all(batch_size=1)

    assert counts == {"healthy": 1, "cooling": 1}
    assert ContactHealth.objects.get(contact=healthy).state == "healthy"
    row = ContactHealth.objects.get(contact=cooling)
    assert row.state == "cooling" and row.reasons == ["no_engagement"]
    assert ContactHealth.objects.count() == 2


@time_machine.travel(NOW, tick=False)
def test_cooling_from_silence_queues_one_reengagement_mail(django_capture_on_commit_callbacks):
    contact = quiet_contact(100, last_mail_days=40, frequency="monthly")
    relationship.health_recompute(contact_ids=[contact.pk])
    relationship.health_recompute(contact_ids=[contact.pk])

    mails = Delivery.objects.filter(contact=contact, kind=Kind.REENGAGEMENT)
    assert mails.count() == 1
    assert mails.get().template == "reengagement"
    # It takes the place of the next nurture mail, which now comes one interval later.
    assert Schedule.objects.get(contact=contact).next_due_at == NOW + timedelta(days=30)


@time_machine.travel(NOW, tick=False)
def test_a_reengagement_mail_waits_for_the_contacts_next_slot(django_capture_on_commit_callbacks):
    """Never more than chosen: a monthly subscriber mailed five days ago gets no second marketing mail."""
    contact = quiet_contact(100, last_mail_days=5, frequency="monthly")
    relationship.health_recompute(contact_ids=[contact.pk])

    assert not Delivery.objects.filter(contact=contact, kind=Kind.REENGAGEMENT).exists()
    assert ContactHealth.objects.get(contact=contact).reengaged_at is None, "it tries again later"
    with time_machine.travel(NOW + timedelta(days=26), tick=False):
        relationship.health_recompute(contact_ids=[contact.pk])
    assert Delivery.objects.filter(contact=contact, kind=Kind.REENGAGEMENT).count() == 1


@time_machine.travel(NOW, tick=False)
def test_no_reengagement_while_another_marketing_mail_is_on_its_way(django_capture_on_commit_callbacks):
    contact = quiet_contact(100, last_mail_days=40, frequency="monthly")
    DeliveryFactory.create(contact=contact)
    relationship.health_recompute(contact_ids=[contact.pk])
    assert not Delivery.objects.filter(contact=contact, kind=Kind.REENGAGEMENT).exists()


@time_machine.travel(NOW, tick=False)
def test_a_lost_contact_is_sunset_to_the_least_frequent_cadence_then_stopped():
    contact = quiet_contact(400, frequency="monthly")

    relationship.health_recompute(contact_ids=[contact.pk])
    contact.refresh_from_db()
    assert contact.frequency == "quarterly" and contact.status == Contact.Status.CONFIRMED
    first = contact.consent_events.get(kind=ConsentEvent.Kind.SUNSET)
    assert first.after["frequency"] == "quarterly" and first.source == "health-sunset"

    with time_machine.travel(NOW + timedelta(days=200), tick=False):
        Schedule.objects.filter(contact=contact).update(last_sent_at=timezone.now() - timedelta(days=5))
        relationship.health_recompute(contact_ids=[contact.pk])
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    assert contact.consent_events.filter(kind=ConsentEvent.Kind.SUNSET).count() == 2
    assert ContactHealth.objects.get(contact=contact).sunset_stage == 2


@time_machine.travel(NOW, tick=False)
def test_an_open_brings_a_quiet_contact_back_to_healthy_and_ends_the_sunset():
    contact = quiet_contact(400)
    relationship.health_recompute(contact_ids=[contact.pk])
    assert ContactHealth.objects.get(contact=contact).state == "lost"

    relationship.health_record_event(contact_id=contact.pk, event_type=DeliveryEvent.Type.OPENED)

    row = ContactHealth.objects.get(contact=contact)
    assert row.state == "healthy" and row.sunset_stage == 0


@time_machine.travel(NOW, tick=False)
def test_a_complaint_makes_the_relationship_lost_without_a_sunset_mail():
    contact = quiet_contact(10)
    relationship.health_record_event(contact_id=contact.pk, event_type=DeliveryEvent.Type.COMPLAINED)
    row = ContactHealth.objects.get(contact=contact)
    assert row.state == "lost" and row.reasons == ["complaint"]
    assert not contact.consent_events.filter(kind=ConsentEvent.Kind.SUNSET).exists()


@time_machine.travel(NOW, tick=False)
def test_lowering_the_frequency_on_the_preference_centre_recomputes_health(
    celery_eager, django_capture_on_commit_callbacks, topics
):
    contact = quiet_contact(10, frequency="biweekly", topics=topics)
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_update_preferences(
            contact=contact, evidence=services.Evidence(source="test"), frequency="quarterly", topics=topics[:1]
        )
    row = ContactHealth.objects.get(contact=contact)
    assert row.state == "at_risk"
    assert set(row.reasons) == {"topics_dropped", "frequency_lowered"}
