from __future__ import annotations

from datetime import timedelta

import pytest
from anymail.exceptions import AnymailAPIError
from django.core import mail
from django.utils import timezone

from cadence.batch import batch_send
from cadence.kinds import Kind
from messaging import services
from messaging.models import Delivery
from preferences.models import Contact
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


def queued(contact: Contact, kind: str = Kind.WELCOME) -> Delivery:
    return DeliveryFactory.create(contact=contact, kind=kind)


def test_a_delivery_is_sent_once_even_when_sent_twice():
    delivery = queued(ContactFactory())
    batch_send(delivery_ids=[delivery.id])
    assert batch_send(delivery_ids=[delivery.id]).sent == []
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1
    assert delivery.esp_message_id and delivery.esp_name == "test"


def test_one_key_makes_one_delivery():
    contact = ContactFactory()
    fields = {"kind": "welcome", "template": "welcome", "marketing": True, "queue": "welcome"}
    assert services.delivery_create(contact=contact, idempotency_key="same", **fields)
    assert services.delivery_create(contact=contact, idempotency_key="same", **fields) is None
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"status": Contact.Status.UNSUBSCRIBED},
        {"status": Contact.Status.PENDING},
        {"suppressed_at": timezone.now()},
        {"paused_until": timezone.now() + timedelta(days=3)},
    ],
)
def test_consent_is_checked_again_at_send_time(change):
    contact = ContactFactory()
    delivery = queued(contact)
    Contact.objects.filter(pk=contact.pk).update(**change)

    batch_send(delivery_ids=[delivery.id])

    assert mail.outbox == []
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED


def test_transactional_mail_carries_no_marketing_headers():
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    batch_send(delivery_ids=[queued(contact, Kind.CONFIRMATION).id])
    message = mail.outbox[0]
    assert "List-Unsubscribe" not in message.extra_headers
    assert "/confirm/" in message.body


def test_a_transient_esp_error_queues_the_delivery_again(monkeypatch):
    delivery = queued(ContactFactory())

    def fail(self, *args, **kwargs):
        raise AnymailAPIError("busy", status_code=503)

    monkeypatch.setattr("anymail.backends.test.EmailBackend.send_messages", fail)
    with pytest.raises(services.TransientSendError):
        batch_send(delivery_ids=[delivery.id])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED
    assert "503" in delivery.error


def test_a_permanent_esp_error_fails_the_delivery_visibly(monkeypatch):
    delivery = queued(ContactFactory())

    def fail(self, *args, **kwargs):
        raise AnymailAPIError("bad sender", status_code=400)

    monkeypatch.setattr("anymail.backends.test.EmailBackend.send_messages", fail)
    batch_send(delivery_ids=[delivery.id])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "400" in delivery.error
