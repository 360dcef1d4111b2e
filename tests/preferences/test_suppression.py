from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from messaging.models import Delivery
from preferences import signals
from preferences.models import ConsentEvent, Contact, SuppressionEntry
from preferences.services import Evidence, address_hash, contact_suppress
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


def signup(client: Client, email: str):
    payload = {"email": email, "first_name": "Eva", "locale": "nl", "topics": ["saving"], "source": "homepage"}
    return client.post("/api/v1/subscribe/", payload, content_type="application/json")


def test_suppressing_stops_marketing_records_evidence_and_tells_the_other_apps():
    contact = ContactFactory()
    queued = DeliveryFactory.create(contact=contact, template="welcome")
    heard = []

    def listen(sender, contact, reason, **kwargs):
        heard.append(reason)

    signals.contact_suppressed.connect(listen, dispatch_uid="test-listen")
    try:
        done = contact_suppress(
            contact=contact, reason="complaint", evidence=Evidence(source="esp:Postmark", extra={"event_id": "e1"})
        )
    finally:
        signals.contact_suppressed.disconnect(dispatch_uid="test-listen")

    assert done is True and heard == ["complaint"]
    contact.refresh_from_db()
    assert contact.suppressed_at is not None and contact.suppression_reason == "complaint"
    assert not contact.may_receive_marketing()
    entry = ConsentEvent.objects.get(contact=contact, kind=ConsentEvent.Kind.SUPPRESSED)
    assert entry.evidence == {"event_id": "e1"} and entry.source == "esp:Postmark"
    assert SuppressionEntry.objects.get(address_hash=address_hash(contact.email)).reason == "complaint"
    queued.refresh_from_db()
    assert queued.status == Delivery.Status.CANCELLED


def test_suppressing_twice_writes_one_ledger_entry():
    contact = ContactFactory()
    evidence = Evidence(source="esp:Mailgun")
    assert contact_suppress(contact=contact, reason="hard_bounce", evidence=evidence) is True
    assert contact_suppress(contact=contact, reason="hard_bounce", evidence=evidence) is False
    assert ConsentEvent.objects.filter(contact=contact, kind=ConsentEvent.Kind.SUPPRESSED).count() == 1


def test_the_list_keys_the_normalised_address_by_hash_not_the_address_itself():
    assert address_hash(" Eva@Example.COM") == address_hash("eva@example.com")
    contact = ContactFactory(email="eva@example.com")
    contact_suppress(contact=contact, reason="hard_bounce", evidence=Evidence())
    entry = SuppressionEntry.objects.get()
    assert "eva" not in entry.address_hash and len(entry.address_hash) == 64


def test_a_suppressed_address_that_signs_up_again_gets_no_mail_and_the_same_answer(
    client, topics, django_capture_on_commit_callbacks, celery_eager
):
    bounced = ContactFactory(email="gone@example.com")
    contact_suppress(contact=bounced, reason="hard_bounce", evidence=Evidence())
    # The contact is erased; only the hash is left.
    Contact.objects.filter(pk=bounced.pk).update(email=f"erased-{bounced.pk}@invalid")

    with django_capture_on_commit_callbacks(execute=True):
        refused = signup(client, "Gone@Example.com")
    with django_capture_on_commit_callbacks(execute=True):
        welcome = signup(client, "fresh@example.com")

    assert (refused.status_code, refused.json()) == (welcome.status_code, welcome.json())
    assert [m.to for m in mail.outbox] == [["fresh@example.com"]]
    again = Contact.objects.get(email="gone@example.com")
    assert again.suppressed_at is not None and again.suppression_reason == "hard_bounce"
    assert not Delivery.objects.filter(contact=again).exists()
    assert ConsentEvent.objects.filter(contact=again, kind=ConsentEvent.Kind.SIGNUP).exists()


def test_a_batch_of_suppressions_stops_cancels_and_recomputes_for_all_at_once(django_capture_on_commit_callbacks):
    """A batch of ESP bounces: one statement per receiver and one health task, not three per contact."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cadence.models import Schedule
    from cadence.schedules import schedule_start
    from preferences.services import contacts_suppress

    contacts = ContactFactory.create_batch(5, status=Contact.Status.CONFIRMED)
    for contact in contacts:
        schedule_start(contact=contact)
        Delivery.objects.create(
            marketing=True, contact=contact, kind="nurture", template="nurture", idempotency_key=f"q-{contact.pk}"
        )
    evidence = Evidence(source="esp:Postmark")
    with django_capture_on_commit_callbacks() as callbacks, CaptureQueriesContext(connection) as queries:
        done = contacts_suppress(suppressions=[(contact.pk, "hard_bounce", evidence) for contact in contacts])

    assert len(done) == 5
    assert not Schedule.objects.filter(contact__in=contacts, is_active=True).exists()
    assert set(Delivery.objects.filter(contact__in=contacts).values_list("status", flat=True)) == {"cancelled"}
    assert len(callbacks) == 1  # one health task for the batch
    schedule_updates = [q for q in queries if q["sql"].startswith('UPDATE "cadence_schedule"')]
    delivery_updates = [q for q in queries if q["sql"].startswith('UPDATE "messaging_delivery"')]
    assert len(schedule_updates) == 1 and len(delivery_updates) == 1
